package demo.order;

import java.math.BigDecimal;
import java.math.RoundingMode;
import java.util.List;

/**
 * Prices an order. PLANTED CPU HOTSPOT: priceOrder evaluates a table of tax/discount rules in
 * many simulation rounds (pure CPU, no allocation in the loop). The rounds' result feeds the
 * checksum stored with the order, so the JIT cannot drop the work.
 *
 * Cost: ROUNDS_AT_COST_1 * PRICING_COST rounds (PRICING_COST=0 removes the loop; the prices
 * themselves never depend on the cost).
 */
public final class PricingEngine {
    /** Calibrated so that one order costs about 8 ms of CPU at cost 1 (see docker/demo/README.md). */
    static final int ROUNDS_AT_COST_1 = 11_500;

    private static final int RULE_COUNT = 48;
    private static final double[] RULE_RATE = new double[RULE_COUNT];
    private static final double[] RULE_FLOOR = new double[RULE_COUNT];
    private static final BigDecimal TAX_RATE = new BigDecimal("0.08");

    static {
        for (int i = 0; i < RULE_COUNT; i++) {
            RULE_RATE[i] = 0.5 + (i % 7) * 0.0625 + i * 0.001;
            RULE_FLOOR[i] = (i % 5) * 0.25 + 0.01 * i;
        }
    }

    private final int rounds;

    public PricingEngine(double cost) {
        this.rounds = (int) Math.round(ROUNDS_AT_COST_1 * cost);
    }

    public int rounds() {
        return rounds;
    }

    /** Prices lines for customerId: subtotal, volume discount, 8 % tax, total, rule checksum. */
    public Quote priceOrder(String customerId, List<OrderLine> lines) {
        BigDecimal subtotal = BigDecimal.ZERO;
        for (OrderLine line : lines) {
            subtotal = subtotal.add(line.lineTotal());
        }
        subtotal = subtotal.setScale(2, RoundingMode.HALF_UP);

        // Rule simulation: every round walks the whole rule table; each step depends on the
        // previous one, so this is a serial floating-point chain the JIT cannot vectorize.
        double base = subtotal.doubleValue() * 0.001 + lines.size();
        double score = base;
        long checksum = 0xcbf29ce484222325L ^ customerId.hashCode();
        for (int round = 0; round < rounds; round++) {
            double roundBias = 1.0 + (round & 7) * 0.125;
            for (int i = 0; i < RULE_COUNT; i++) {
                double x = score * RULE_RATE[i] + RULE_FLOOR[i];
                x = Math.sqrt(x * x + roundBias);
                score = x - (long) x + base;
                checksum = (checksum ^ Double.doubleToRawLongBits(x)) * 0x100000001b3L;
            }
        }

        BigDecimal discountRate;
        if (subtotal.compareTo(new BigDecimal("500")) >= 0) {
            discountRate = new BigDecimal("0.10");
        } else if (subtotal.compareTo(new BigDecimal("200")) >= 0) {
            discountRate = new BigDecimal("0.05");
        } else if (subtotal.compareTo(new BigDecimal("100")) >= 0) {
            discountRate = new BigDecimal("0.02");
        } else {
            discountRate = BigDecimal.ZERO;
        }
        BigDecimal discount = subtotal.multiply(discountRate).setScale(2, RoundingMode.HALF_UP);
        BigDecimal taxable = subtotal.subtract(discount);
        BigDecimal tax = taxable.multiply(TAX_RATE).setScale(2, RoundingMode.HALF_UP);
        BigDecimal total = taxable.add(tax);
        return new Quote(subtotal, discount, tax, total, checksum);
    }
}
