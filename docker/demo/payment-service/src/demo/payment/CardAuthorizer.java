package demo.payment;

import demo.common.GroundTruth;

import java.math.BigDecimal;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.LongAdder;

/**
 * Authorizes card payments.
 *
 * PLANTED OFF-CPU WAIT: authorize sleeps LATENCY_MICROS_AT_COST_1 * PAYMENT_LATENCY_COST to
 * simulate the card issuer's round trip; it shows in wall-clock profiles, not in CPU profiles.
 */
public final class CardAuthorizer {
    /** Simulated issuer latency at cost 1. */
    static final long LATENCY_MICROS_AT_COST_1 = 40_000;
    /** Cards starting with this prefix are always declined (lets tests force a decline). */
    public static final String DECLINED_TEST_CARD = "4000-0000-0000-0002";

    /** The decision: AUTHORIZED (with an id) or DECLINED (with a reason). */
    public record Decision(String status, String authorizationId, String reason) {
    }

    private final long latencyMicros;
    private final double declineRate;
    private final LongAdder authorized = new LongAdder();
    private final LongAdder declined = new LongAdder();
    /** Ground truth (GET /debug/ground-truth): calls and nanoTime around the planted sleep. */
    private final LongAdder calls = GroundTruth.counter("authorizeCalls");
    private final LongAdder sleepNanos = GroundTruth.counter("authorizeSleepNanos");

    public CardAuthorizer(double latencyCost, double declineRate) {
        this.latencyMicros = Math.round(LATENCY_MICROS_AT_COST_1 * latencyCost);
        this.declineRate = declineRate;
    }

    public long latencyMicros() {
        return latencyMicros;
    }

    public Decision authorize(String orderId, BigDecimal amount, String cardNumber)
            throws InterruptedException {
        calls.increment();
        if (latencyMicros > 0) {
            long t0 = System.nanoTime();
            try {
                Thread.sleep(latencyMicros / 1000, (int) (latencyMicros % 1000) * 1000);
            } finally {
                sleepNanos.add(System.nanoTime() - t0);
            }
        }
        if (cardNumber.startsWith(DECLINED_TEST_CARD)) {
            declined.increment();
            return new Decision("DECLINED", null, "test card always declined");
        }
        if (declineRate > 0 && ThreadLocalRandom.current().nextDouble() < declineRate) {
            declined.increment();
            return new Decision("DECLINED", null, "issuer declined");
        }
        authorized.increment();
        return new Decision("AUTHORIZED", "auth-" + UUID.randomUUID(), null);
    }

    /** Counts of decisions and the simulated latency per call. */
    public Map<String, Object> stats() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("authorized", authorized.sum());
        m.put("declined", declined.sum());
        m.put("latencyMicrosPerCall", latencyMicros);
        m.put("declineRate", declineRate);
        return m;
    }
}
