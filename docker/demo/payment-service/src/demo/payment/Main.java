package demo.payment;

import demo.common.GroundTruth;
import demo.common.Json;
import demo.common.HttpIo;

import com.sun.net.httpserver.HttpExchange;
import java.math.BigDecimal;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * payment-service: POST /authorizations, GET /health. Paths are served both bare and under
 * /payments (/payments/authorizations), the form the gateway forwards.
 */
public final class Main {
    private static final String SERVICE = "payment-service";
    private static final String PREFIX = "/payments";
    private static final int PORT = 8080;
    private static final int THREADS = 32;

    private Main() {
    }

    public static void main(String[] args) throws Exception {
        double latencyCost = HttpIo.costEnv("PAYMENT_LATENCY_COST", 1.0);
        double declineRate = HttpIo.costEnv("PAYMENT_DECLINE_RATE", 0.1);
        if (declineRate > 1) {
            System.err.println("invalid PAYMENT_DECLINE_RATE=" + declineRate + ": expected 0..1");
            System.exit(2);
        }
        GroundTruth.service(SERVICE);
        CardAuthorizer authorizer = new CardAuthorizer(latencyCost, declineRate);
        HttpIo.start(SERVICE, PORT, THREADS, (exchange, method, path) -> route(authorizer, exchange, method, path));
        System.out.printf("%s listening on :%d (threads=%d, PAYMENT_LATENCY_COST=%s -> %d us per"
                        + " authorization, PAYMENT_DECLINE_RATE=%s)%n",
                SERVICE, PORT, THREADS, latencyCost, authorizer.latencyMicros(), declineRate);
    }

    private static void route(CardAuthorizer authorizer, HttpExchange exchange, String method, String rawPath)
            throws Exception {
        String path = rawPath.equals(PREFIX) || rawPath.startsWith(PREFIX + "/")
                ? rawPath.substring(PREFIX.length()) : rawPath;
        if (path.equals("/health")) {
            HttpIo.health(exchange, SERVICE);
        } else if (GroundTruth.serve(exchange, method, rawPath)) {
            return;
        } else if (path.equals("/authorizations/stats") && method.equals("GET")) {
            HttpIo.json(exchange, 200, Json.write(authorizer.stats()));
        } else if (path.equals("/authorizations") && method.equals("POST")) {
            Map<String, Object> body = HttpIo.jsonBody(exchange);
            Object orderId = body.get("orderId");
            Object amount = body.get("amount");
            Object card = body.get("cardNumber");
            if (!(orderId instanceof String) || !(card instanceof String)
                    || !(amount instanceof BigDecimal) || ((BigDecimal) amount).signum() < 0) {
                throw new IllegalArgumentException(
                        "expected {\"orderId\": string, \"amount\": number >= 0, \"cardNumber\": string}");
            }
            CardAuthorizer.Decision d = authorizer.authorize((String) orderId, (BigDecimal) amount, (String) card);
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("orderId", orderId);
            m.put("status", d.status());
            m.put("authorizationId", d.authorizationId());
            m.put("reason", d.reason());
            m.put("amount", amount);
            HttpIo.json(exchange, 200, Json.write(m));
        } else {
            HttpIo.json(exchange, 404, HttpIo.error("no route for " + method + " " + rawPath));
        }
    }
}
