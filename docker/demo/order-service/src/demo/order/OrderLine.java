package demo.order;

import java.math.BigDecimal;
import java.math.RoundingMode;

/** One order line: qty units of sku at unitPrice. */
public record OrderLine(String sku, int qty, BigDecimal unitPrice) {
    public BigDecimal lineTotal() {
        return unitPrice.multiply(BigDecimal.valueOf(qty)).setScale(2, RoundingMode.HALF_UP);
    }
}
