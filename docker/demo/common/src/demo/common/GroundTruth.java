package demo.common;

import com.sun.net.httpserver.HttpExchange;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentSkipListMap;
import java.util.concurrent.atomic.LongAdder;
import java.util.function.LongSupplier;

/**
 * What the planted code really cost, for checking a profiler against: named cumulative counters
 * (since JVM start), each measured around a planted method only, served as JSON at
 * {@code GET /debug/ground-truth} next to the whole process's CPU time and the JVM's uptime.
 *
 * Counters are LongAdders (a few ns per add, no contention); the reply is read from a snapshot
 * taken when the request is served, stamped with the wall-clock time of that snapshot, so a
 * reader can place it on a timeline without trusting its own request latency.
 */
public final class GroundTruth {
    public static final String PATH = "/debug/ground-truth";

    private static final com.sun.management.ThreadMXBean THREADS =
            (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
    private static final com.sun.management.OperatingSystemMXBean OS =
            (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
    private static final Map<String, LongSupplier> COUNTERS = new ConcurrentSkipListMap<>();
    private static volatile String service = "unknown";

    static {
        // Both are on by default in HotSpot; switched on explicitly so the counters never read -1.
        if (THREADS.isCurrentThreadCpuTimeSupported() && !THREADS.isThreadCpuTimeEnabled()) {
            THREADS.setThreadCpuTimeEnabled(true);
        }
        if (THREADS.isThreadAllocatedMemorySupported() && !THREADS.isThreadAllocatedMemoryEnabled()) {
            THREADS.setThreadAllocatedMemoryEnabled(true);
        }
    }

    private GroundTruth() {
    }

    /** Names the service in the reply (set once at start-up). */
    public static void service(String name) {
        service = name;
    }

    /** A counter registered under name (the same adder for the same name). */
    public static LongAdder counter(String name) {
        LongAdder adder = new LongAdder();
        LongSupplier prev = COUNTERS.putIfAbsent(name, adder::sum);
        if (prev != null) {
            throw new IllegalStateException("ground-truth counter " + name + " registered twice");
        }
        return adder;
    }

    /** A value kept elsewhere (e.g. an AtomicLong), read at each snapshot. */
    public static void gauge(String name, LongSupplier value) {
        COUNTERS.put(name, value);
    }

    /** CPU time of the calling thread (ns). */
    public static long threadCpuNanos() {
        return THREADS.getCurrentThreadCpuTime();
    }

    /** Bytes allocated so far by the calling thread. */
    public static long threadAllocatedBytes() {
        return THREADS.getThreadAllocatedBytes(Thread.currentThread().getId());
    }

    /**
     * The reply: service, wall-clock time of the snapshot, uptime, process CPU (all threads, JIT
     * and GC included; OperatingSystemMXBean, 10 ms resolution on Linux), bytes allocated by the
     * live threads, then the counters by name.
     */
    public static Map<String, Object> snapshot() {
        long cpu = OS.getProcessCpuTime();
        Map<String, Object> counters = new TreeMap<>();
        for (Map.Entry<String, LongSupplier> e : COUNTERS.entrySet()) {
            counters.put(e.getKey(), e.getValue().getAsLong());
        }
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("service", service);
        java.time.Instant now = java.time.Instant.now();
        m.put("epochMicros", now.getEpochSecond() * 1_000_000L + now.getNano() / 1000);
        m.put("uptimeMillis", ManagementFactory.getRuntimeMXBean().getUptime());
        m.put("processCpuNanos", cpu);
        m.put("allocatedBytes", THREADS.getTotalThreadAllocatedBytes());
        m.put("counters", counters);
        return m;
    }

    /** Serves GET /debug/ground-truth; false when the path is another one. */
    public static boolean serve(HttpExchange exchange, String method, String path) throws IOException {
        if (!path.equals(PATH)) {
            return false;
        }
        if (!method.equals("GET")) {
            HttpIo.json(exchange, 405, HttpIo.error("use GET " + PATH));
        } else {
            HttpIo.json(exchange, 200, Json.write(snapshot()));
        }
        return true;
    }
}
