package demo.order;

import demo.common.GroundTruth;
import demo.common.Json;
import demo.common.HttpIo;

import com.sun.net.httpserver.HttpExchange;
import java.util.Map;

/** order-service: POST /orders (the saga), GET /orders/{id}, GET /health. */
public final class Main {
    private static final String SERVICE = "order-service";
    private static final int PORT = 8080;
    private static final int THREADS = 32;

    private Main() {
    }

    public static void main(String[] args) throws Exception {
        // Keep-alive connections cached per downstream host (the JDK default is 5).
        System.setProperty("http.maxConnections", String.valueOf(THREADS));
        double pricingCost = HttpIo.costEnv("PRICING_COST", 1.0);
        double jsonCost = HttpIo.costEnv("ORDER_JSON_COST", 1.0);
        String inventoryUrl = HttpIo.env("INVENTORY_URL", "http://inventory-service:8080");
        String paymentUrl = HttpIo.env("PAYMENT_URL", "http://payment-service:8080");

        GroundTruth.service(SERVICE);
        PricingEngine pricing = new PricingEngine(pricingCost);
        OrderJson.configure(jsonCost);
        Metrics metrics = new Metrics();
        OrderService orders = new OrderService(pricing, new Downstream(inventoryUrl, paymentUrl), metrics);

        HttpIo.start(SERVICE, PORT, THREADS,
                (exchange, method, path) -> route(orders, metrics, exchange, method, path));
        System.out.printf("%s listening on :%d (threads=%d, PRICING_COST=%s -> %d rounds,"
                        + " ORDER_JSON_COST=%s -> %d extra passes, inventory=%s, payment=%s)%n",
                SERVICE, PORT, THREADS, pricingCost, pricing.rounds(), jsonCost,
                OrderJson.extraPasses(), inventoryUrl, paymentUrl);
    }

    private static void route(OrderService orders, Metrics metrics, HttpExchange exchange, String method,
                              String path) throws Exception {
        if (path.equals("/health")) {
            HttpIo.health(exchange, SERVICE);
        } else if (GroundTruth.serve(exchange, method, path)) {
            return;
        } else if (path.equals("/orders/stats") && method.equals("GET")) {
            HttpIo.json(exchange, 200, Json.write(metrics.snapshot()));
        } else if (path.equals("/orders") || path.equals("/orders/")) {
            if (!method.equals("POST")) {
                HttpIo.json(exchange, 405, HttpIo.error("use POST /orders"));
                return;
            }
            Map<String, Object> request = HttpIo.jsonBody(exchange);
            OrderService.Outcome outcome = orders.place(request);
            if (outcome.order() == null) {
                HttpIo.json(exchange, outcome.httpStatus(), HttpIo.error("an order with this ref is in progress"));
                return;
            }
            HttpIo.json(exchange, outcome.httpStatus(), render(metrics, outcome.order()));
        } else if (path.startsWith("/orders/") && path.indexOf('/', 8) < 0) {
            if (!method.equals("GET")) {
                HttpIo.json(exchange, 405, HttpIo.error("use GET /orders/{id}"));
                return;
            }
            Order order = orders.find(path.substring(8));
            if (order == null) {
                HttpIo.json(exchange, 404, HttpIo.error("unknown order " + path.substring(8)));
            } else {
                HttpIo.json(exchange, 200, render(metrics, order));
            }
        } else {
            HttpIo.json(exchange, 404, HttpIo.error("no route for " + method + " " + path));
        }
    }

    /** OrderJson.write, with the bytes it allocated counted in the metrics. */
    private static String render(Metrics metrics, Order order) {
        long before = Metrics.threadAllocatedBytes();
        String json = OrderJson.write(order);
        metrics.json(Metrics.threadAllocatedBytes() - before);
        return json;
    }
}
