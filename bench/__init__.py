"""On-demand benchmarks (``make bench``): markhouse's real backfill path against what a user would
use instead, measured side by side in one invocation. Never run in CI."""
