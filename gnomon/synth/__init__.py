"""Synthetic, realistic analytics traffic for `gnomon send`, benchmarks and the demo.

    from gnomon.synth import SynthConfig, generate, track_kwargs, event_batches
    config = SynthConfig(events=1_000_000, seed=7, days=2, pages=10_000, end=end)

- `generate(config)` -> numpy column chunks (`SynthChunk`): the vectorized core; `SynthChunk.to_pandas()`.
- `track_kwargs(config)` -> one dict per event, keyword arguments of the SDK's `Client.track` (slow path,
  ~0.1-0.2 M events/s, used by `gnomon send`).
- `event_batches(config, batch_size)` -> serialized `gnomon.v1.EventBatch` bytes (fast path for load
  benchmarks: event bytes are assembled from cached per-visitor/per-page fragments, no message objects).

Output is deterministic for a given config with an explicit `end` (ids included: resending the same
config is deduplicated by the collector).
"""

from gnomon.synth.output import event_batches, to_pandas, track_kwargs
from gnomon.synth.traffic import SynthChunk, SynthConfig, generate

__all__ = ["SynthChunk", "SynthConfig", "event_batches", "generate", "to_pandas", "track_kwargs"]
