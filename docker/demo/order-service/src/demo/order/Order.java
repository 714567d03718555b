package demo.order;

import java.time.Instant;
import java.util.List;

/** Immutable order state; every saga step stores a new instance. */
public record Order(
        String orderId,
        String customerId,
        List<OrderLine> items,
        String cardLast4,
        Quote quote,
        String status,
        String reservationStatus,
        String paymentStatus,
        String authorizationId,
        String failureReason,
        Instant createdAt,
        Instant updatedAt) {

    public static final String PENDING = "PENDING";
    public static final String CONFIRMED = "CONFIRMED";
    public static final String FAILED = "FAILED";
    public static final String REJECTED = "REJECTED";

    public static Order pending(String orderId, String customerId, List<OrderLine> items,
                                String cardLast4, Quote quote) {
        Instant now = Instant.now();
        return new Order(orderId, customerId, List.copyOf(items), cardLast4, quote, PENDING,
                null, null, null, null, now, now);
    }

    public Order withReservation(String newReservationStatus) {
        return new Order(orderId, customerId, items, cardLast4, quote, status, newReservationStatus,
                paymentStatus, authorizationId, failureReason, createdAt, Instant.now());
    }

    public Order withPayment(String newPaymentStatus, String newAuthorizationId) {
        return new Order(orderId, customerId, items, cardLast4, quote, status, reservationStatus,
                newPaymentStatus, newAuthorizationId, failureReason, createdAt, Instant.now());
    }

    public Order withOutcome(String newStatus, String reason) {
        return new Order(orderId, customerId, items, cardLast4, quote, newStatus, reservationStatus,
                paymentStatus, authorizationId, reason, createdAt, Instant.now());
    }
}
