"""The orchestrations, on top of every stage: `profile` (one run), `chain` (the stack and
profile_all), `setup` (the profiler), `review` (report, compare, view)."""
