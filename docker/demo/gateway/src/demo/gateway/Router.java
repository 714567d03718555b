package demo.gateway;

import demo.common.HttpIo;

import com.sun.net.httpserver.HttpExchange;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Forwards /api/{orders,inventory,payments}... to the owning service with the /api prefix
 * stripped (/api/orders/42 -> ORDER_URL/orders/42). Method, body, query string, status and
 * Content-Type travel through; one pooled HTTP/1.1 client serves every upstream.
 */
public final class Router {
    private static final Duration TIMEOUT = Duration.ofSeconds(30);

    private final HttpClient client;
    /** "/api/orders" -> "http://order-service:8080", in match order. */
    private final Map<String, String> routes = new LinkedHashMap<>();

    public Router(HttpClient client, String orderUrl, String inventoryUrl, String paymentUrl) {
        this.client = client;
        routes.put("/api/orders", trimSlash(orderUrl));
        routes.put("/api/inventory", trimSlash(inventoryUrl));
        routes.put("/api/payments", trimSlash(paymentUrl));
    }

    public Map<String, String> routes() {
        return routes;
    }

    /** Returns false when no route matches the path. */
    public boolean forward(HttpExchange exchange, String method, String path) throws Exception {
        String upstream = null;
        for (Map.Entry<String, String> route : routes.entrySet()) {
            String prefix = route.getKey();
            if (path.equals(prefix) || path.startsWith(prefix + "/")) {
                upstream = route.getValue();
                break;
            }
        }
        if (upstream == null) {
            return false;
        }
        String query = exchange.getRequestURI().getRawQuery();
        String target = upstream + exchange.getRequestURI().getRawPath().substring("/api".length())
                + (query == null ? "" : "?" + query);
        byte[] body = HttpIo.body(exchange);
        HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(target))
                .timeout(TIMEOUT)
                .method(method, body.length == 0
                        ? HttpRequest.BodyPublishers.noBody()
                        : HttpRequest.BodyPublishers.ofByteArray(body));
        String contentType = exchange.getRequestHeaders().getFirst("Content-Type");
        if (contentType != null) {
            request.header("Content-Type", contentType);
        }
        String accept = exchange.getRequestHeaders().getFirst("Accept");
        if (accept != null) {
            request.header("Accept", accept);
        }
        HttpResponse<byte[]> reply;
        try {
            reply = client.send(request.build(), HttpResponse.BodyHandlers.ofByteArray());
        } catch (HttpTimeoutException ex) {
            HttpIo.json(exchange, 504, HttpIo.error("upstream timeout: " + upstream));
            return true;
        } catch (IOException ex) {
            HttpIo.json(exchange, 502, HttpIo.error("upstream unavailable: " + upstream + " (" + ex + ")"));
            return true;
        }
        HttpIo.send(exchange, reply.statusCode(),
                reply.headers().firstValue("Content-Type").orElse(null), reply.body());
        return true;
    }

    private static String trimSlash(String url) {
        return url.endsWith("/") ? url.substring(0, url.length() - 1) : url;
    }
}
