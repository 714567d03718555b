package demo.inventory;

import demo.common.GroundTruth;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Stock per SKU and reservations per order.
 *
 * PLANTED LOCK CONTENTION: every write goes through one ledger monitor, and reserve holds it
 * while it appends to the ledger journal (a sleep of JOURNAL_MICROS_AT_COST_1 * LEDGER_LOCK_COST)
 * and, on every CHECKPOINT_EVERY-th reservation, also checkpoints the journal (a further
 * CHECKPOINT_MICROS_AT_COST_1 * LEDGER_LOCK_COST). The checkpoint is what makes contention
 * certain under an evenly paced load (k6 constant-arrival-rate): a few ms per call alone
 * never overlaps when calls arrive 40 ms apart, but the call after a checkpoint always waits
 * for it inside reserve. Reads (available, snapshot, reservation) never take the lock.
 */
public final class StockLedger {
    /** Journal append time inside the lock per reservation at cost 1. */
    static final long JOURNAL_MICROS_AT_COST_1 = 5_000;
    /** Extra journal checkpoint time inside the lock at cost 1, every CHECKPOINT_EVERY calls. */
    static final long CHECKPOINT_MICROS_AT_COST_1 = 60_000;
    static final int CHECKPOINT_EVERY = 10;

    /** One line of a reservation or of a bulk stock update. */
    public record Line(String sku, int qty) {
    }

    /** A reservation: status RESERVED or RELEASED. */
    public record Reservation(String orderId, String status, List<Line> lines) {
    }

    /** reserve's answer: the reservation, or the first line that could not be covered. */
    public record ReserveResult(Reservation reservation, boolean created, String sku, int requested,
                                int available) {
    }

    private final Object ledgerLock = new Object();
    private final Map<String, Integer> stock = new ConcurrentHashMap<>();
    private final Map<String, Reservation> reservations = new ConcurrentHashMap<>();
    private final long journalMicros;
    private final long checkpointMicros;
    private final AtomicLong reserveCalls = new AtomicLong();
    private final AtomicLong contendedCalls = new AtomicLong();
    private final AtomicLong waitNanos = new AtomicLong();
    private final AtomicLong releaseCalls = new AtomicLong();
    private final AtomicLong releaseWaitNanos = new AtomicLong();

    public StockLedger(double cost) {
        this.journalMicros = Math.round(JOURNAL_MICROS_AT_COST_1 * cost);
        this.checkpointMicros = Math.round(CHECKPOINT_MICROS_AT_COST_1 * cost);
        // ground truth (GET /debug/ground-truth): time blocked on the ledger monitor, measured
        // around the monitor's acquisition only
        GroundTruth.gauge("reserveCalls", reserveCalls::get);
        GroundTruth.gauge("reserveContendedCalls", contendedCalls::get);
        GroundTruth.gauge("reserveLockWaitNanos", waitNanos::get);
        GroundTruth.gauge("releaseCalls", releaseCalls::get);
        GroundTruth.gauge("releaseLockWaitNanos", releaseWaitNanos::get);
    }

    /** The lock hold per reservation, for the start-up line. */
    public String describeHold() {
        return journalMicros + " us lock hold per reservation + " + checkpointMicros
                + " us every " + CHECKPOINT_EVERY + "th";
    }

    /** Reserves all lines of orderId or none; a known orderId returns its existing reservation. */
    public ReserveResult reserve(String orderId, List<Line> lines) throws InterruptedException {
        long askedAt = System.nanoTime();
        synchronized (ledgerLock) {
            long waited = System.nanoTime() - askedAt;
            long call = reserveCalls.incrementAndGet();
            waitNanos.addAndGet(waited);
            if (waited > 100_000) {
                contendedCalls.incrementAndGet();
            }
            long holdMicros = journalMicros + (call % CHECKPOINT_EVERY == 0 ? checkpointMicros : 0);
            if (holdMicros > 0) {
                Thread.sleep(holdMicros / 1000, (int) (holdMicros % 1000) * 1000);
            }
            Reservation existing = reservations.get(orderId);
            if (existing != null) {
                return new ReserveResult(existing, false, null, 0, 0);
            }
            Map<String, Integer> wanted = new LinkedHashMap<>();
            for (Line line : lines) {
                wanted.merge(line.sku(), line.qty(), Integer::sum);
            }
            for (Map.Entry<String, Integer> w : wanted.entrySet()) {
                int available = stock.getOrDefault(w.getKey(), 0);
                if (available < w.getValue()) {
                    return new ReserveResult(null, false, w.getKey(), w.getValue(), available);
                }
            }
            for (Map.Entry<String, Integer> w : wanted.entrySet()) {
                stock.merge(w.getKey(), -w.getValue(), Integer::sum);
            }
            Reservation reservation = new Reservation(orderId, "RESERVED", List.copyOf(lines));
            reservations.put(orderId, reservation);
            return new ReserveResult(reservation, true, null, 0, 0);
        }
    }

    /** Puts a reservation's stock back; null if unknown; releasing twice changes nothing. */
    public Reservation release(String orderId) {
        long askedAt = System.nanoTime();
        synchronized (ledgerLock) {
            releaseWaitNanos.addAndGet(System.nanoTime() - askedAt);
            releaseCalls.incrementAndGet();
            Reservation r = reservations.get(orderId);
            if (r == null || !r.status().equals("RESERVED")) {
                return r;
            }
            for (Line line : r.lines()) {
                stock.merge(line.sku(), line.qty(), Integer::sum);
            }
            Reservation released = new Reservation(orderId, "RELEASED", r.lines());
            reservations.put(orderId, released);
            return released;
        }
    }

    /** Sets (not adds) the available quantity of each SKU. */
    public void setStock(List<Line> lines) {
        synchronized (ledgerLock) {
            for (Line line : lines) {
                stock.put(line.sku(), line.qty());
            }
        }
    }

    public Integer available(String sku) {
        return stock.get(sku);
    }

    public Reservation reservation(String orderId) {
        return reservations.get(orderId);
    }

    /** All SKUs with their available quantity, sorted by SKU. */
    public Map<String, Integer> snapshot() {
        return new TreeMap<>(stock);
    }

    /** Counters of reserve's lock use (contended = waited more than 0.1 ms for the monitor). */
    public Map<String, Object> stats() {
        Map<String, Object> m = new LinkedHashMap<>();
        long calls = reserveCalls.get();
        m.put("reserveCalls", calls);
        m.put("contendedCalls", contendedCalls.get());
        m.put("lockWaitMillisTotal", waitNanos.get() / 1_000_000);
        m.put("journalMicrosPerCall", journalMicros);
        m.put("checkpointMicros", checkpointMicros);
        m.put("checkpointEvery", CHECKPOINT_EVERY);
        m.put("reservations", reservations.size());
        return m;
    }
}
