package demo.order;

import demo.common.Json;
import demo.common.HttpIo;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.math.BigDecimal;
import java.net.HttpURLConnection;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Calls to inventory-service and payment-service. Plain HttpURLConnection: synchronous on the
 * request thread, with the JDK's keep-alive connection cache (http.maxConnections per host, set
 * in Main). Measured cheaper in CPU than java.net.http.HttpClient, whose selector and worker
 * threads would otherwise blur this service's CPU profile.
 */
public final class Downstream {
    /** Outcome of a reservation: reserved, or the reply's explanation of why not. */
    public record Reservation(boolean reserved, String detail) {
    }

    /** Outcome of an authorization: "AUTHORIZED" or "DECLINED". */
    public record Payment(String status, String authorizationId, String reason) {
        public boolean authorized() {
            return "AUTHORIZED".equals(status);
        }
    }

    /** Status code and body text of a reply. */
    private record Reply(int status, String body) {
    }

    private static final int CONNECT_TIMEOUT_MS = 2_000;
    private static final int READ_TIMEOUT_MS = 10_000;

    private final String inventoryUrl;
    private final String paymentUrl;

    public Downstream(String inventoryUrl, String paymentUrl) {
        this.inventoryUrl = trimSlash(inventoryUrl);
        this.paymentUrl = trimSlash(paymentUrl);
    }

    public Reservation reserve(String orderId, List<OrderLine> lines) throws IOException {
        List<Object> items = new ArrayList<>();
        for (OrderLine line : lines) {
            Map<String, Object> item = new LinkedHashMap<>();
            item.put("sku", line.sku());
            item.put("qty", line.qty());
            items.add(item);
        }
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("orderId", orderId);
        body.put("items", items);
        Reply reply = call("POST", inventoryUrl + "/reservations", Json.write(body));
        if (reply.status() == 200 || reply.status() == 201) {
            return new Reservation(true, "RESERVED");
        }
        if (reply.status() == 409) {
            Map<String, Object> r = Json.parseObject(reply.body());
            return new Reservation(false, "insufficient stock for " + r.get("sku")
                    + " (requested " + r.get("requested") + ", available " + r.get("available") + ")");
        }
        throw new IOException("inventory-service replied " + reply.status() + ": " + reply.body());
    }

    public void release(String orderId) throws IOException {
        Reply reply = call("DELETE", inventoryUrl + "/reservations/" + orderId, null);
        if (reply.status() != 200) {
            throw new IOException("inventory-service release replied " + reply.status());
        }
    }

    public Payment authorize(String orderId, BigDecimal amount, String cardNumber) throws IOException {
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("orderId", orderId);
        body.put("amount", amount);
        body.put("cardNumber", cardNumber);
        Reply reply = call("POST", paymentUrl + "/authorizations", Json.write(body));
        if (reply.status() != 200) {
            throw new IOException("payment-service replied " + reply.status() + ": " + reply.body());
        }
        Map<String, Object> r = Json.parseObject(reply.body());
        return new Payment(String.valueOf(r.get("status")), (String) r.get("authorizationId"),
                (String) r.get("reason"));
    }

    /** One request; the reply is read to the end so the connection returns to the cache. */
    private static Reply call(String method, String url, String json) throws IOException {
        HttpURLConnection c = (HttpURLConnection) new URL(url).openConnection();
        c.setConnectTimeout(CONNECT_TIMEOUT_MS);
        c.setReadTimeout(READ_TIMEOUT_MS);
        c.setRequestMethod(method);
        if (json != null) {
            byte[] bytes = json.getBytes(StandardCharsets.UTF_8);
            c.setDoOutput(true);
            c.setRequestProperty("Content-Type", HttpIo.JSON);
            // Not setFixedLengthStreamingMode: before a streamed POST on a cached connection the
            // JDK probes the socket with a 1 ms read timeout and throws a SocketTimeoutException
            // each time; that cost swung between 1 % and 15 % of this service's CPU from one
            // window to the next (the JIT deoptimizing its exception path). A buffered body is
            // small here and is resent on a stale connection instead.
            try (OutputStream out = c.getOutputStream()) {
                out.write(bytes);
            }
        }
        int status = c.getResponseCode();
        InputStream stream = status >= 400 ? c.getErrorStream() : c.getInputStream();
        if (stream == null) {
            return new Reply(status, "");
        }
        try (InputStream in = stream) {
            return new Reply(status, new String(in.readAllBytes(), StandardCharsets.UTF_8));
        }
    }

    private static String trimSlash(String url) {
        return url.endsWith("/") ? url.substring(0, url.length() - 1) : url;
    }
}
