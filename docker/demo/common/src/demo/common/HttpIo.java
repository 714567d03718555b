package demo.common;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;

/** Small helpers around com.sun.net.httpserver (copied into each demo service). */
public final class HttpIo {
    public static final String JSON = "application/json";

    /** A request handler that may throw; failures become a 500 JSON reply. */
    public interface Handler {
        void handle(HttpExchange exchange, String method, String path) throws Exception;
    }

    private HttpIo() {
    }

    /** Starts an HttpServer on port with a fixed pool of named threads and one root handler. */
    public static HttpServer start(String service, int port, int threads, Handler handler)
            throws IOException {
        // Without TCP_NODELAY, headers and body leave as two segments and Nagle's algorithm
        // waits for the peer's delayed ACK: about 40 ms added to many replies.
        System.setProperty("sun.net.httpserver.nodelay", "true");
        HttpServer server = HttpServer.create(new InetSocketAddress(port), 256);
        AtomicInteger counter = new AtomicInteger();
        ExecutorService pool = Executors.newFixedThreadPool(threads,
                r -> new Thread(r, service + "-http-" + counter.incrementAndGet()));
        server.setExecutor(pool);
        server.createContext("/", exchange -> dispatch(service, handler, exchange));
        server.start();
        return server;
    }

    /**
     * Ground truth (GET /debug/ground-truth): wall time the pool threads spent handling requests
     * (from dispatch to close), the denominator of a request-thread wall share.
     */
    private static final java.util.concurrent.atomic.LongAdder HANDLER_NANOS = GroundTruth.counter("handlerNanos");
    private static final java.util.concurrent.atomic.LongAdder HANDLER_CALLS = GroundTruth.counter("handlerCalls");

    private static void dispatch(String service, Handler handler, HttpExchange exchange) {
        long t0 = System.nanoTime();
        try {
            handler.handle(exchange, exchange.getRequestMethod(), exchange.getRequestURI().getPath());
        } catch (IllegalArgumentException ex) {
            sendQuietly(exchange, 400, error(ex.getMessage()));
        } catch (Exception ex) {
            System.err.println(service + ": " + exchange.getRequestMethod() + " "
                    + exchange.getRequestURI() + " failed: " + ex);
            sendQuietly(exchange, 500, error("internal error: " + ex.getClass().getSimpleName()));
        } finally {
            exchange.close();
            HANDLER_NANOS.add(System.nanoTime() - t0);
            HANDLER_CALLS.increment();
        }
    }

    /** Reads the whole request body. */
    public static byte[] body(HttpExchange exchange) throws IOException {
        try (InputStream in = exchange.getRequestBody()) {
            return in.readAllBytes();
        }
    }

    /** Reads the request body as a JSON object (IllegalArgumentException -> 400). */
    public static Map<String, Object> jsonBody(HttpExchange exchange) throws IOException {
        return Json.parseObject(new String(body(exchange), StandardCharsets.UTF_8));
    }

    /** Sends a complete reply; an empty body is sent without a body (length -1). */
    public static void send(HttpExchange exchange, int status, String contentType, byte[] body)
            throws IOException {
        if (contentType != null) {
            exchange.getResponseHeaders().set("Content-Type", contentType);
        }
        boolean empty = body == null || body.length == 0;
        exchange.sendResponseHeaders(status, empty ? -1 : body.length);
        if (!empty) {
            try (OutputStream out = exchange.getResponseBody()) {
                out.write(body);
            }
        }
    }

    /** Sends a JSON text reply. */
    public static void json(HttpExchange exchange, int status, String json) throws IOException {
        send(exchange, status, JSON, json.getBytes(StandardCharsets.UTF_8));
    }

    /** Sends {"status":"UP","service":...}. */
    public static void health(HttpExchange exchange, String service) throws IOException {
        json(exchange, 200, "{\"status\":\"UP\",\"service\":" + Json.quote(service) + "}");
    }

    /** {"error": message} */
    public static String error(String message) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("error", message);
        return Json.write(m);
    }

    private static void sendQuietly(HttpExchange exchange, int status, String json) {
        try {
            json(exchange, status, json);
        } catch (IOException | RuntimeException ignored) {
            // headers already sent or client gone: nothing more to do
        }
    }

    /** Environment variable or a default. */
    public static String env(String name, String fallback) {
        String v = System.getenv(name);
        return v == null || v.isBlank() ? fallback : v.trim();
    }

    /** Non-negative finite number from the environment; exits with a clear message otherwise. */
    public static double costEnv(String name, double fallback) {
        String raw = env(name, null);
        if (raw == null) {
            return fallback;
        }
        try {
            double v = Double.parseDouble(raw);
            if (v >= 0 && !Double.isInfinite(v)) {
                return v;
            }
        } catch (NumberFormatException ignored) {
            // reported below
        }
        System.err.println("invalid " + name + "=" + raw + ": expected a number >= 0");
        System.exit(2);
        return fallback;
    }
}
