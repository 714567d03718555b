package demo.order;

import java.math.BigDecimal;

/** Result of PricingEngine.priceOrder; amounts have scale 2. */
public record Quote(BigDecimal subtotal, BigDecimal discount, BigDecimal tax, BigDecimal total,
                    long checksum) {
}
