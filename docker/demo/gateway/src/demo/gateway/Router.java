package demo.gateway;

import demo.common.GroundTruth;
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
 *
 * Also passes GET /debug/ground-truth/{service} (order-service, inventory-service,
 * payment-service) to that service's GET /debug/ground-truth, so a benchmark on the host reads
 * every service's counters through the one published port.
 */
public final class Router {
    private static final Duration TIMEOUT = Duration.ofSeconds(30);

    private final HttpClient client;
    /** "/api/orders" -> "http://order-service:8080", in match order. */
    private final Map<String, String> routes = new LinkedHashMap<>();
    /** "order-service" -> "http://order-service:8080": the ground-truth pass-through. */
    private final Map<String, String> services = new LinkedHashMap<>();

    public Router(HttpClient client, String orderUrl, String inventoryUrl, String paymentUrl) {
        this.client = client;
        routes.put("/api/orders", trimSlash(orderUrl));
        routes.put("/api/inventory", trimSlash(inventoryUrl));
        routes.put("/api/payments", trimSlash(paymentUrl));
        services.put("order-service", trimSlash(orderUrl));
        services.put("inventory-service", trimSlash(inventoryUrl));
        services.put("payment-service", trimSlash(paymentUrl));
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
            return groundTruth(exchange, method, path);
        }
        String query = exchange.getRequestURI().getRawQuery();
        String target = upstream + exchange.getRequestURI().getRawPath().substring("/api".length())
                + (query == null ? "" : "?" + query);
        proxy(exchange, method, upstream, target);
        return true;
    }

    /** GET /debug/ground-truth/{service} -> that service's GET /debug/ground-truth. */
    private boolean groundTruth(HttpExchange exchange, String method, String path) throws Exception {
        String prefix = GroundTruth.PATH + "/";
        if (!path.startsWith(prefix)) {
            return false;
        }
        String upstream = services.get(path.substring(prefix.length()));
        if (upstream == null) {
            HttpIo.json(exchange, 404, HttpIo.error("unknown service " + path.substring(prefix.length())
                    + "; one of " + services.keySet()));
        } else if (!method.equals("GET")) {
            HttpIo.json(exchange, 405, HttpIo.error("use GET " + path));
        } else {
            proxy(exchange, method, upstream, upstream + GroundTruth.PATH);
        }
        return true;
    }

    private void proxy(HttpExchange exchange, String method, String upstream, String target) throws Exception {
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
            return;
        } catch (IOException ex) {
            HttpIo.json(exchange, 502, HttpIo.error("upstream unavailable: " + upstream + " (" + ex + ")"));
            return;
        }
        HttpIo.send(exchange, reply.statusCode(),
                reply.headers().firstValue("Content-Type").orElse(null), reply.body());
    }

    private static String trimSlash(String url) {
        return url.endsWith("/") ? url.substring(0, url.length() - 1) : url;
    }
}
