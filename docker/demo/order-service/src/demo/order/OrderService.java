package demo.order;

import java.io.IOException;
import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;

/** The order saga: price, reserve stock, authorize payment, confirm (or compensate). */
public final class OrderService {
    /** HTTP status plus the order as stored. */
    public record Outcome(int httpStatus, Order order) {
    }

    private final PricingEngine pricing;
    private final Downstream downstream;
    private final Metrics metrics;
    private final Map<String, Order> orders = new ConcurrentHashMap<>();
    /** Client-chosen idempotency keys ("ref") to the order they created. */
    private final Map<String, String> refs = new ConcurrentHashMap<>();

    public OrderService(PricingEngine pricing, Downstream downstream, Metrics metrics) {
        this.pricing = pricing;
        this.downstream = downstream;
        this.metrics = metrics;
    }

    public Order find(String orderId) {
        return orders.get(orderId);
    }

    /** Runs the saga for a parsed request body; IllegalArgumentException means a bad request. */
    public Outcome place(Map<String, Object> request) {
        String customerId = requireText(request, "customerId");
        String cardNumber = requireText(request, "cardNumber");
        List<OrderLine> lines = parseLines(request.get("items"));
        String orderId = "ord-" + UUID.randomUUID();
        Object refValue = request.get("ref");
        if (refValue instanceof String ref && !ref.isBlank()) {
            String known = refs.putIfAbsent(ref, orderId);
            if (known != null) {
                // a repeated request: answer with the order the first one created
                Order existing = orders.get(known);
                return existing != null ? new Outcome(200, existing) : new Outcome(409, null);
            }
        }
        String digits = cardNumber.replaceAll("[^0-9]", "");
        String last4 = digits.length() >= 4 ? digits.substring(digits.length() - 4) : digits;

        metrics.orderPlaced();
        long cpuBefore = Metrics.threadCpuNanos();
        Quote quote = pricing.priceOrder(customerId, lines);
        metrics.pricing(Metrics.threadCpuNanos() - cpuBefore);
        Order order = store(Order.pending(orderId, customerId, lines, last4, quote));

        Downstream.Reservation reservation;
        try {
            reservation = downstream.reserve(orderId, lines);
        } catch (IOException ex) {
            return new Outcome(502, store(order.withOutcome(Order.FAILED,
                    "inventory-service unavailable: " + ex.getMessage())));
        }
        if (!reservation.reserved()) {
            return new Outcome(409, store(order.withReservation("REJECTED")
                    .withOutcome(Order.REJECTED, reservation.detail())));
        }
        order = store(order.withReservation("RESERVED"));

        Downstream.Payment payment;
        try {
            payment = downstream.authorize(orderId, quote.total(), cardNumber);
        } catch (IOException ex) {
            order = compensate(order);
            return new Outcome(502, store(order.withOutcome(Order.FAILED,
                    "payment-service unavailable: " + ex.getMessage())));
        }
        order = order.withPayment(payment.status(), payment.authorizationId());
        if (!payment.authorized()) {
            order = compensate(order);
            return new Outcome(201, store(order.withOutcome(Order.FAILED,
                    "payment declined: " + payment.reason())));
        }
        return new Outcome(201, store(order.withOutcome(Order.CONFIRMED, null)));
    }

    /** Releases the order's stock reservation; records a failed release instead of throwing. */
    private Order compensate(Order order) {
        try {
            downstream.release(order.orderId());
            return order.withReservation("RELEASED");
        } catch (IOException ex) {
            System.err.println("order-service: release of " + order.orderId() + " failed: " + ex);
            return order.withReservation("RELEASE_FAILED");
        }
    }

    private Order store(Order order) {
        orders.put(order.orderId(), order);
        return order;
    }

    private static String requireText(Map<String, Object> request, String field) {
        Object value = request.get(field);
        if (!(value instanceof String) || ((String) value).isBlank()) {
            throw new IllegalArgumentException("'" + field + "' must be a non-empty string");
        }
        return (String) value;
    }

    private static List<OrderLine> parseLines(Object items) {
        if (!(items instanceof List) || ((List<?>) items).isEmpty()) {
            throw new IllegalArgumentException("'items' must be a non-empty array");
        }
        List<OrderLine> lines = new ArrayList<>();
        for (Object item : (List<?>) items) {
            if (!(item instanceof Map)) {
                throw new IllegalArgumentException("each item must be an object");
            }
            Map<?, ?> m = (Map<?, ?>) item;
            Object sku = m.get("sku");
            Object qty = m.get("qty");
            Object unitPrice = m.get("unitPrice");
            if (!(sku instanceof String) || ((String) sku).isBlank()) {
                throw new IllegalArgumentException("item 'sku' must be a non-empty string");
            }
            int quantity;
            try {
                quantity = qty instanceof BigDecimal ? ((BigDecimal) qty).intValueExact() : 0;
            } catch (ArithmeticException ex) {
                quantity = 0;
            }
            if (quantity <= 0) {
                throw new IllegalArgumentException("item 'qty' must be a positive integer");
            }
            if (!(unitPrice instanceof BigDecimal) || ((BigDecimal) unitPrice).signum() < 0) {
                throw new IllegalArgumentException("item 'unitPrice' must be a number >= 0");
            }
            lines.add(new OrderLine((String) sku, quantity, (BigDecimal) unitPrice));
        }
        return lines;
    }
}
