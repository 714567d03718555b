package demo.inventory;

import demo.common.GroundTruth;
import demo.common.Json;
import demo.common.HttpIo;

import com.sun.net.httpserver.HttpExchange;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * inventory-service: stock per SKU and reservations. Paths are served both bare (/stock/...)
 * and under /inventory (/inventory/stock/...), the form the gateway forwards.
 */
public final class Main {
    private static final String SERVICE = "inventory-service";
    private static final String PREFIX = "/inventory";
    private static final int PORT = 8080;
    private static final int THREADS = 32;

    private Main() {
    }

    public static void main(String[] args) throws Exception {
        double lockCost = HttpIo.costEnv("LEDGER_LOCK_COST", 1.0);
        GroundTruth.service(SERVICE);
        StockLedger ledger = new StockLedger(lockCost);
        HttpIo.start(SERVICE, PORT, THREADS, (exchange, method, path) -> route(ledger, exchange, method, path));
        System.out.printf("%s listening on :%d (threads=%d, LEDGER_LOCK_COST=%s -> %s)%n",
                SERVICE, PORT, THREADS, lockCost, ledger.describeHold());
    }

    private static void route(StockLedger ledger, HttpExchange exchange, String method, String rawPath)
            throws Exception {
        String path = rawPath.equals(PREFIX) || rawPath.startsWith(PREFIX + "/")
                ? rawPath.substring(PREFIX.length()) : rawPath;
        String[] parts = path.split("/");   // "/a/b" -> ["", "a", "b"]
        String first = parts.length > 1 ? parts[1] : "";
        if (path.equals("/health")) {
            HttpIo.health(exchange, SERVICE);
        } else if (GroundTruth.serve(exchange, method, rawPath)) {
            return;
        } else if (path.equals("/ledger/stats") && method.equals("GET")) {
            HttpIo.json(exchange, 200, Json.write(ledger.stats()));
        } else if (first.equals("stock")) {
            stock(ledger, exchange, method, parts);
        } else if (first.equals("reservations")) {
            reservations(ledger, exchange, method, parts);
        } else {
            HttpIo.json(exchange, 404, HttpIo.error("no route for " + method + " " + rawPath));
        }
    }

    private static void stock(StockLedger ledger, HttpExchange exchange, String method, String[] parts)
            throws Exception {
        if (parts.length == 2 && method.equals("GET")) {
            List<Object> items = new ArrayList<>();
            for (Map.Entry<String, Integer> e : ledger.snapshot().entrySet()) {
                items.add(stockJson(e.getKey(), e.getValue()));
            }
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("items", items);
            HttpIo.json(exchange, 200, Json.write(m));
        } else if (parts.length == 3 && parts[2].equals("bulk") && method.equals("POST")) {
            Object body = Json.parse(new String(HttpIo.body(exchange), StandardCharsets.UTF_8));
            if (body instanceof Map) {
                body = ((Map<?, ?>) body).get("items");
            }
            List<StockLedger.Line> lines = parseLines(body, true);
            ledger.setStock(lines);
            HttpIo.json(exchange, 200, "{\"updated\":" + lines.size() + "}");
        } else if (parts.length == 3 && method.equals("GET")) {
            Integer available = ledger.available(parts[2]);
            if (available == null) {
                HttpIo.json(exchange, 404, HttpIo.error("unknown sku " + parts[2]));
            } else {
                HttpIo.json(exchange, 200, Json.write(stockJson(parts[2], available)));
            }
        } else {
            HttpIo.json(exchange, 404, HttpIo.error("no route for " + method + " " + String.join("/", parts)));
        }
    }

    private static void reservations(StockLedger ledger, HttpExchange exchange, String method, String[] parts)
            throws Exception {
        if (parts.length == 2 && method.equals("POST")) {
            Map<String, Object> body = HttpIo.jsonBody(exchange);
            Object orderId = body.get("orderId");
            if (!(orderId instanceof String) || ((String) orderId).isBlank()) {
                throw new IllegalArgumentException("'orderId' must be a non-empty string");
            }
            List<StockLedger.Line> lines = parseLines(body.get("items"), false);
            StockLedger.ReserveResult result = ledger.reserve((String) orderId, lines);
            if (result.reservation() != null) {
                HttpIo.json(exchange, result.created() ? 201 : 200, reservationJson(result.reservation()));
            } else {
                Map<String, Object> m = new LinkedHashMap<>();
                m.put("orderId", orderId);
                m.put("status", "INSUFFICIENT_STOCK");
                m.put("sku", result.sku());
                m.put("requested", result.requested());
                m.put("available", result.available());
                HttpIo.json(exchange, 409, Json.write(m));
            }
            return;
        }
        boolean release = (parts.length == 3 && method.equals("DELETE"))
                || (parts.length == 4 && parts[3].equals("release") && method.equals("POST"));
        if (release || (parts.length == 3 && method.equals("GET"))) {
            String orderId = parts[2];
            StockLedger.Reservation r = release ? ledger.release(orderId) : ledger.reservation(orderId);
            if (r == null) {
                HttpIo.json(exchange, 404, HttpIo.error("unknown reservation " + orderId));
            } else {
                HttpIo.json(exchange, 200, reservationJson(r));
            }
            return;
        }
        HttpIo.json(exchange, 404, HttpIo.error("no route for " + method + " " + String.join("/", parts)));
    }

    private static List<StockLedger.Line> parseLines(Object items, boolean allowZero) {
        if (!(items instanceof List) || (!allowZero && ((List<?>) items).isEmpty())) {
            throw new IllegalArgumentException("'items' must be a non-empty array of {sku, qty}");
        }
        List<StockLedger.Line> lines = new ArrayList<>();
        for (Object item : (List<?>) items) {
            if (!(item instanceof Map)) {
                throw new IllegalArgumentException("each item must be an object {sku, qty}");
            }
            Object sku = ((Map<?, ?>) item).get("sku");
            Object qty = ((Map<?, ?>) item).get("qty");
            if (!(sku instanceof String) || ((String) sku).isBlank()) {
                throw new IllegalArgumentException("item 'sku' must be a non-empty string");
            }
            int n;
            try {
                n = qty instanceof BigDecimal ? ((BigDecimal) qty).intValueExact() : -1;
            } catch (ArithmeticException ex) {
                n = -1;
            }
            if (n < 0 || (n == 0 && !allowZero)) {
                throw new IllegalArgumentException("item 'qty' must be an integer "
                        + (allowZero ? ">= 0" : "> 0"));
            }
            lines.add(new StockLedger.Line((String) sku, n));
        }
        return lines;
    }

    private static Map<String, Object> stockJson(String sku, int available) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("sku", sku);
        m.put("available", available);
        return m;
    }

    private static String reservationJson(StockLedger.Reservation r) {
        List<Object> items = new ArrayList<>();
        for (StockLedger.Line line : r.lines()) {
            Map<String, Object> item = new LinkedHashMap<>();
            item.put("sku", line.sku());
            item.put("qty", line.qty());
            items.add(item);
        }
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("orderId", r.orderId());
        m.put("status", r.status());
        m.put("items", items);
        return Json.write(m);
    }
}
