package demo.order;

import demo.common.GroundTruth;

import java.lang.management.ManagementFactory;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.atomic.LongAdder;

/**
 * Ground-truth counters for the planted hotspots, measured around (never inside) them:
 * thread CPU time spent in PricingEngine.priceOrder and bytes allocated by OrderJson.write, next
 * to the whole JVM's CPU time and heap allocation (all threads since start), so a profile's
 * shares can be checked against the differences of two GET /orders/stats readings. The same
 * counters, in ns and bytes, are served at GET /debug/ground-truth (demo.common.GroundTruth).
 */
public final class Metrics {
    private static final com.sun.management.ThreadMXBean THREADS =
            (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
    private static final com.sun.management.OperatingSystemMXBean OS =
            (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();

    private final LongAdder orders = GroundTruth.counter("orders");
    private final LongAdder pricingCalls = GroundTruth.counter("pricingCalls");
    private final LongAdder pricingCpuNanos = GroundTruth.counter("pricingCpuNanos");
    private final LongAdder jsonCalls = GroundTruth.counter("orderJsonCalls");
    private final LongAdder jsonAllocatedBytes = GroundTruth.counter("orderJsonAllocatedBytes");

    /** CPU time of the calling thread (ns). */
    public static long threadCpuNanos() {
        return GroundTruth.threadCpuNanos();
    }

    /** Bytes allocated so far by the calling thread. */
    public static long threadAllocatedBytes() {
        return GroundTruth.threadAllocatedBytes();
    }

    public void orderPlaced() {
        orders.increment();
    }

    public void pricing(long cpuNanos) {
        pricingCalls.increment();
        pricingCpuNanos.add(cpuNanos);
    }

    public void json(long allocatedBytes) {
        jsonCalls.increment();
        jsonAllocatedBytes.add(allocatedBytes);
    }

    public Map<String, Object> snapshot() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("orders", orders.sum());
        m.put("pricingCalls", pricingCalls.sum());
        m.put("pricingCpuMillis", pricingCpuNanos.sum() / 1_000_000);
        m.put("orderJsonCalls", jsonCalls.sum());
        m.put("orderJsonAllocatedBytes", jsonAllocatedBytes.sum());
        m.put("processCpuMillis", OS.getProcessCpuTime() / 1_000_000);
        m.put("processAllocatedBytes", THREADS.getTotalThreadAllocatedBytes());
        return m;
    }
}
