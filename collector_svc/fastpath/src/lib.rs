//! `gnomon_fastpath`: the collector's screen of a serialized `gnomon.v1.EventBatch`, in one pass over its bytes,
//! and the aggregator's decode of `gnomon.v1.LoggedBatch` payloads into columns (`decode_logged`, see `logged`).
//!
//! `Screen(...).scan(batch, oldest_s, newest_s)` reads the wire format directly (`wire`), checks every event
//! against the rules of collector_svc/validation.py (`checks`) and truncates every ip (`ip`). It answers
//! `None` when it does not decide the batch (not parseable by its strict reader, empty, too many events,
//! too large): the caller then runs the Python path, which parses with upb and names the problem. Otherwise a
//! `Scanned`: the batch id, every event id, and the indexes of the events Python must judge step by step
//! (`flagged`: invalid, or not decided here). `Scanned.logged_batch(...)` then writes the LoggedBatch:
//! the caller's header followed by the kept events re-encoded byte for byte as upb serializes them (`encode`),
//! each with its truncated ip. The ip a client sent is never copied to the output.
//!
//! `hll_images(...)` builds the aggregator's HLL sketch images (aggregator/hll.py `build_sketches`, see `hll`).
//!
//! Nothing here panics on any input: a reader that runs out answers `None`, a writer that would overflow
//! reports an error.

mod checks;
mod encode;
mod hll;
mod ip;
mod logged;
mod wire;

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use pyo3::buffer::{Element, PyBuffer};
use pyo3::exceptions::{PyIndexError, PyMemoryError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};

use checks::{IpOut, Limits};
use wire::{Batch, EVENT_ID};

/// A fast non-cryptographic hasher for the in-batch duplicate check (at most a few hundred short ids).
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut h = self.0;
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let word = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
            h = (h.rotate_left(5) ^ word).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            h = (h.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
        self.0 = h;
    }

    fn finish(&self) -> u64 {
        // murmur3's fmix64: every input bit reaches the low bits that pick the bucket
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

/// The screen, configured once with the limits of collector_svc/validation.py.
#[pyclass(frozen, module = "gnomon_fastpath")]
struct Screen {
    limits: Limits,
    max_events: usize,
    max_bytes: usize,
}

#[pymethods]
impl Screen {
    #[new]
    #[pyo3(signature = (
        *, max_events, max_bytes, max_event_id, max_name, max_other, max_user_agent, max_url, max_title,
        max_params, max_param_value
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        max_events: usize,
        max_bytes: usize,
        max_event_id: usize,
        max_name: usize,
        max_other: usize,
        max_user_agent: usize,
        max_url: usize,
        max_title: usize,
        max_params: usize,
        max_param_value: usize,
    ) -> Self {
        let limits = Limits {
            max_event_id,
            max_name,
            max_other,
            max_user_agent,
            max_url,
            max_title,
            max_params,
            max_param_value,
        };
        Screen { limits, max_events, max_bytes }
    }

    /// Screens one serialized EventBatch; `None` when the Python path must handle the whole batch.
    fn scan(
        &self,
        py: Python<'_>,
        batch: &Bound<'_, PyBytes>,
        oldest_s: i64,
        newest_s: i64,
    ) -> PyResult<Option<Scanned>> {
        let buf = batch.as_bytes();
        if buf.len() > self.max_bytes {
            return Ok(None);
        }
        let Some(parsed) = wire::parse_batch(buf, self.max_events) else {
            return Ok(None);
        };
        let n = parsed.events.len();
        if n == 0 {
            return Ok(None);
        }
        let window = (oldest_s, newest_s);
        let mut ips = Vec::with_capacity(n);
        let mut sizes = Vec::with_capacity(n);
        let mut flagged = Vec::new();
        let mut empty_ip = false;
        let mut seen: HashSet<&[u8], BuildHasherDefault<IdHasher>> =
            HashSet::with_capacity_and_hasher(n, BuildHasherDefault::default());
        let mut dup_ids = false;
        let mut ids = Vec::with_capacity(n);
        for (i, ev) in parsed.events.iter().enumerate() {
            let id = ev.strings[EVENT_ID].of(buf);
            dup_ids |= !seen.insert(id);
            ids.push(PyString::new(py, std::str::from_utf8(id).map_err(|e| PyRuntimeError::new_err(e.to_string()))?));
            let mut ip = checks::ip_out(buf, ev);
            empty_ip |= ip == IpOut::Fallback;
            if !checks::passes(buf, &parsed, ev, &self.limits, window) || ip == IpOut::Undecided {
                flagged.push(i);
                ip = IpOut::Undecided;
            }
            ips.push(ip);
            sizes.push(encode::size_without_ip(buf, &parsed, ev));
        }
        let batch_id = std::str::from_utf8(parsed.id.of(buf)).map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
        Ok(Some(Scanned {
            raw: batch.clone().unbind(),
            batch_id: PyString::new(py, batch_id).unbind(),
            event_ids: PyList::new(py, ids)?.unbind(),
            flagged: PyList::new(py, &flagged)?.unbind(),
            empty_ip,
            dup_ids,
            batch: parsed,
            ips,
            sizes,
        }))
    }
}

/// One screened batch (see the module doc). Holds the request bytes; only `event_bytes` gives any of them back.
#[pyclass(frozen, module = "gnomon_fastpath")]
struct Scanned {
    raw: Py<PyBytes>,
    batch: Batch,
    ips: Vec<IpOut>,
    sizes: Vec<usize>,
    /// `EventBatch.batch_id`.
    #[pyo3(get)]
    batch_id: Py<PyString>,
    /// Every `event_id`, in batch order (also of invalid events).
    #[pyo3(get)]
    event_ids: Py<PyList>,
    /// Indexes (ascending) of the events to judge in Python: invalid, or not decided here.
    #[pyo3(get)]
    flagged: Py<PyList>,
    /// Some event has an empty `ip` (the connection's address is needed).
    #[pyo3(get)]
    empty_ip: bool,
    /// Some `event_id` occurs more than once.
    #[pyo3(get)]
    dup_ids: bool,
}

#[pymethods]
impl Scanned {
    fn __len__(&self) -> usize {
        self.batch.events.len()
    }

    /// The serialized event `index` exactly as received (its ip not yet truncated): parse it, never store it.
    fn event_bytes<'py>(&self, py: Python<'py>, index: usize) -> PyResult<Bound<'py, PyBytes>> {
        let ev = self.batch.events.get(index).ok_or_else(|| PyIndexError::new_err("event index out of range"))?;
        Ok(PyBytes::new(py, ev.raw.of(self.raw.bind(py).as_bytes())))
    }

    /// `header` followed by every event not in `drop` as a LoggedBatch `events` entry (field 3).
    ///
    /// Event `i` gets `ips[i]` as its ip when given (required for a flagged event that is kept), else its own
    /// ip truncated, else (it had none) `fallback_ip`. Raises ValueError for a kept flagged event without
    /// `ips[i]`, IndexError for an index out of range.
    #[pyo3(signature = (header, drop, ips, fallback_ip))]
    #[allow(clippy::needless_pass_by_value)] // pyo3 hands over the extracted arguments by value
    fn logged_batch<'py>(
        &self,
        py: Python<'py>,
        header: &[u8],
        drop: Vec<usize>,
        ips: HashMap<usize, String>,
        fallback_ip: &str,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let n = self.batch.events.len();
        let mut keep = vec![true; n];
        for i in drop {
            *keep.get_mut(i).ok_or_else(|| PyIndexError::new_err("drop index out of range"))? = false;
        }
        if let Some(&bad) = ips.keys().find(|&&i| i >= n) {
            return Err(PyIndexError::new_err(format!("ips index {bad} out of range")));
        }
        let mut chosen: Vec<(usize, &[u8])> = Vec::with_capacity(n);
        let mut total = header.len();
        for (i, &kept) in keep.iter().enumerate() {
            if !kept {
                continue;
            }
            let ip: &[u8] = match (ips.get(&i), &self.ips[i]) {
                (Some(given), _) => given.as_bytes(),
                (None, IpOut::Network(short)) => short.as_bytes(),
                (None, IpOut::Fallback) => fallback_ip.as_bytes(),
                (None, IpOut::Undecided) => {
                    return Err(PyValueError::new_err(format!("event {i} is flagged: its ip must be given")));
                }
            };
            let size = encode::size_with_ip(self.sizes[i], ip);
            total += 1 + encode::varint_len(size as u64) + size;
            chosen.push((size, ip));
        }
        let buf = self.raw.bind(py).as_bytes();
        PyBytes::new_with(py, total, |out| {
            let mut w = encode::Writer::new(out);
            let fail = |_| PyRuntimeError::new_err("gnomon_fastpath: encoded size mismatch (a bug)");
            w.bytes(header).map_err(fail)?;
            let kept = self.batch.events.iter().zip(&keep).filter(|&(_, &k)| k).map(|(ev, _)| ev);
            for (ev, &(size, ip)) in kept.zip(&chosen) {
                w.byte(0x1A).map_err(fail)?; // LoggedBatch.events: field 3, length-delimited
                w.varint(size as u64).map_err(fail)?;
                encode::write_event(&mut w, buf, &self.batch, ev, ip).map_err(fail)?;
            }
            w.finish().map_err(fail)
        })
    }

    /// The ip the event `index` would get if kept without an override: its /24 or /48 network, `""` when it
    /// had none (the fallback applies), `None` when flagged. For tests and diagnostics.
    fn truncated_ip(&self, index: usize) -> PyResult<Option<String>> {
        let ip = self.ips.get(index).ok_or_else(|| PyIndexError::new_err("event index out of range"))?;
        Ok(match ip {
            IpOut::Network(short) => Some(String::from_utf8_lossy(short.as_bytes()).into_owned()),
            IpOut::Fallback => Some(String::new()),
            IpOut::Undecided => None,
        })
    }
}

/// `truncate_ip(text)` of collector_svc/iptrunc.py, for differential tests.
#[pyfunction]
fn truncate_ip(text: &str) -> Option<String> {
    ip::truncate_ip(text.as_bytes()).map(|short| String::from_utf8_lossy(short.as_bytes()).into_owned())
}

/// `decode_logged(payloads, with_event_bytes)`: the columns of aggregator/decode.py's event frame for a list
/// of serialized LoggedBatch payloads, or `None` when the Python path must decode them (see `logged`).
///
/// Answers `(n, strings, event_time_us, received_time_us, revenue_micros, event_bytes)`: `strings` holds one
/// `(data, offsets)` pair of bytes per string column (Arrow large_string buffers: UTF-8 data and n + 1
/// little-endian int64 offsets), the three int columns are n little-endian int64 each, and `event_bytes` is
/// a list of each event's serialized bytes as logged (`None` unless asked for). The GIL is released while the
/// payloads are parsed.
#[pyfunction]
#[allow(clippy::needless_pass_by_value)] // pyo3 extracts an owned list of the caller's bytes
fn decode_logged<'py>(
    py: Python<'py>,
    payloads: Vec<Bound<'py, PyBytes>>,
    with_event_bytes: bool,
) -> PyResult<Option<Bound<'py, PyTuple>>> {
    let buffers: Vec<&[u8]> = payloads.iter().map(PyBytesMethods::as_bytes).collect();
    let Some(columns) = py.detach(|| logged::decode(&buffers)) else {
        return Ok(None);
    };
    let strings = PyList::empty(py);
    for text in &columns.strings {
        strings.append((PyBytes::new(py, &text.data), int64_bytes(py, &text.offsets)?))?;
    }
    let event_bytes = if with_event_bytes {
        let list = PyList::empty(py);
        for &(index, span) in &columns.raw {
            list.append(PyBytes::new(py, span.of(buffers[index])))?;
        }
        Some(list)
    } else {
        None
    };
    let answer = (
        columns.raw.len(),
        strings,
        int64_bytes(py, &columns.event_time_us)?,
        int64_bytes(py, &columns.received_time_us)?,
        int64_bytes(py, &columns.revenue_micros)?,
        event_bytes,
    );
    Ok(Some(answer.into_pyobject(py)?))
}

/// `values` as little-endian bytes, written straight into the new bytes object.
fn int64_bytes<'py>(py: Python<'py>, values: &[i64]) -> PyResult<Bound<'py, PyBytes>> {
    PyBytes::new_with(py, values.len() * 8, |out| {
        for (chunk, value) in out.chunks_exact_mut(8).zip(values) {
            chunk.copy_from_slice(&value.to_le_bytes());
        }
        Ok(())
    })
}

/// `hll_images(group_codes, codes, values, n_groups, lg_k, tgt_type)`: aggregator/hll.py's `build_sketches`
/// (see `hll`), one compact HLL image per group, or `None` when `values` is not strictly ascending and nonzero
/// (the caller runs the NumPy reference). `group_codes` and `codes` are 1-d int64 buffers (a negative code is
/// an ignored item), `values` a 1-d uint32 buffer. Raises ValueError for invalid arguments, as `build_sketches`
/// does. Groups without items share one empty image object. The GIL is released while the images are built.
#[pyfunction]
#[pyo3(signature = (group_codes, codes, values, n_groups, lg_k, tgt_type))]
#[allow(clippy::needless_pass_by_value)] // pyo3 extracts the buffers by value
fn hll_images(
    py: Python<'_>,
    group_codes: PyBuffer<i64>,
    codes: PyBuffer<i64>,
    values: PyBuffer<u32>,
    n_groups: i64,
    lg_k: i64,
    tgt_type: i64,
) -> PyResult<Option<Bound<'_, PyList>>> {
    let mut scratch = HLL_SCRATCH.take();
    let built = hll_images_with(py, &mut scratch, (&group_codes, &codes, &values), n_groups, lg_k, tgt_type);
    if scratch.held() <= HLL_SCRATCH_KEPT {
        HLL_SCRATCH.set(scratch);
    }
    built
}

thread_local! {
    /// `hll_images`'s buffers, kept for the thread's next call unless larger than `HLL_SCRATCH_KEPT`.
    static HLL_SCRATCH: Cell<hll::Scratch> = Cell::default();
}

/// The most memory `hll_images` keeps per thread between calls: enough for calls of ~2.5M items (about 25
/// bytes per item, with the images); a larger call frees its buffers.
const HLL_SCRATCH_KEPT: usize = 64 << 20;

type HllArguments<'a> = (&'a PyBuffer<i64>, &'a PyBuffer<i64>, &'a PyBuffer<u32>);

fn hll_images_with<'py>(
    py: Python<'py>,
    scratch: &mut hll::Scratch,
    (group_codes, codes, values): HllArguments<'_>,
    n_groups: i64,
    lg_k: i64,
    tgt_type: i64,
) -> PyResult<Option<Bound<'py, PyList>>> {
    load(py, group_codes, &mut scratch.groups, "group_codes must be a 1-d integer array")?;
    load(py, codes, &mut scratch.codes, "items.codes must be a 1-d integer array")?;
    load(py, values, &mut scratch.values, "items.values must be a 1-d uint32 array")?;
    let images = match py.detach(|| scratch.build(n_groups, lg_k, tgt_type)) {
        Ok(Some(images)) => images,
        Ok(None) => return Ok(None),
        Err(hll::Problem::Invalid(message)) => return Err(PyValueError::new_err(message)),
        Err(hll::Problem::Memory) => {
            return Err(PyMemoryError::new_err("gnomon_fastpath: out of memory for HLL images"));
        }
    };
    let empty = PyBytes::new(py, &images.empty);
    let list = PyList::new(
        py,
        (0..images.ends.len()).map(|g| match images.image(g) {
            Some(image) => PyBytes::new(py, image),
            None => empty.clone(),
        }),
    )?;
    Ok(Some(list))
}

/// Copies the elements of a one-dimensional buffer (any strides) into `into`, reusing its memory: the build then
/// reads them with the GIL released.
fn load<T: Element + Default>(py: Python<'_>, buffer: &PyBuffer<T>, into: &mut Vec<T>, problem: &str) -> PyResult<()> {
    if buffer.dimensions() != 1 {
        return Err(PyValueError::new_err(problem.to_owned()));
    }
    let n = buffer.item_count();
    into.truncate(n); // every element is overwritten
    into.try_reserve(n - into.len()).map_err(|_| PyMemoryError::new_err("gnomon_fastpath: out of memory"))?;
    into.resize(n, T::default());
    buffer.copy_to_slice(py, into)
}

#[pymodule]
fn gnomon_fastpath(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Screen>()?;
    m.add_class::<Scanned>()?;
    m.add_function(wrap_pyfunction!(truncate_ip, m)?)?;
    m.add_function(wrap_pyfunction!(decode_logged, m)?)?;
    m.add_function(wrap_pyfunction!(hll_images, m)?)?;
    Ok(())
}
