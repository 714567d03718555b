package demo.gateway;

import demo.common.GroundTruth;
import demo.common.HttpIo;

import java.net.http.HttpClient;
import java.time.Duration;

/** gateway: the only published service; GET /health and the /api routes of Router. */
public final class Main {
    private static final String SERVICE = "gateway";
    private static final int PORT = 8080;
    private static final int THREADS = 32;

    private Main() {
    }

    public static void main(String[] args) throws Exception {
        // Pooled connections must be dropped before the server side's 30 s idle timeout.
        System.setProperty("jdk.httpclient.keepalive.timeout", "10");
        HttpClient client = HttpClient.newBuilder()
                .version(HttpClient.Version.HTTP_1_1)
                .connectTimeout(Duration.ofSeconds(2))
                .build();
        Router router = new Router(client,
                HttpIo.env("ORDER_URL", "http://order-service:8080"),
                HttpIo.env("INVENTORY_URL", "http://inventory-service:8080"),
                HttpIo.env("PAYMENT_URL", "http://payment-service:8080"));
        GroundTruth.service(SERVICE);
        HttpIo.start(SERVICE, PORT, THREADS, (exchange, method, path) -> {
            if (path.equals("/health")) {
                HttpIo.health(exchange, SERVICE);
            } else if (GroundTruth.serve(exchange, method, path)) {
                return;
            } else if (!router.forward(exchange, method, path)) {
                HttpIo.json(exchange, 404, HttpIo.error("no route for " + method + " " + path));
            }
        });
        System.out.printf("%s listening on :%d (threads=%d, routes=%s)%n", SERVICE, PORT, THREADS, router.routes());
    }
}
