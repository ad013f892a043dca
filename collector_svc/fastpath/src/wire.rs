//! Reading the protobuf wire format of `gnomon.v1.EventBatch` and `gnomon.v1.LoggedBatch`
//! (proto/gnomon/v1/collector.proto, event.proto).
//!
//! Contract: `parse_batch` and `parse_logged` accept only a strict subset of what upb (the Python protobuf
//! runtime) accepts, and for every input they accept they yield exactly the fields upb would hold after parsing
//! and `DiscardUnknownFields()`:
//! - a scalar or string field seen twice keeps the last value; a sub-message seen twice is merged (its
//!   fields read in wire order, the last one winning); a map key seen twice keeps the last value;
//! - unknown fields with wire type 0, 1, 2 or 5 are skipped (dropped);
//! - every string field, on every occurrence, must be valid UTF-8 (upb fails the parse otherwise).
//!
//! Anything else answers `None` ("not decided here"), and the caller falls back to the Python path, which
//! parses with upb and names the problem: groups (wire types 3/4), wire types 6/7, field number 0, a known
//! field with the wrong wire type, a map entry with a field other than key/value (upb turns such an entry into
//! an unknown field of the event), over-long or non-minimal tags and lengths, a 10-byte varint whose last byte
//! is above 1, truncated input, invalid UTF-8.

use std::cmp::Ordering;

/// A byte range of the request buffer; always within it (built only from checked lengths).
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    /// The bytes of this span; empty if it does not lie within `buf` (never the case for spans made here).
    pub fn of(self, buf: &[u8]) -> &[u8] {
        buf.get(self.start as usize..self.end as usize).unwrap_or_default()
    }
}

/// Fields of `Event` by field number; 3, 7, 11, 12, 13, 14 are sub-messages or the map.
pub const EVENT_ID: usize = 1;
pub const NAME: usize = 2;
pub const CLIENT_ID: usize = 4;
pub const USER_ID: usize = 5;
pub const SESSION_ID: usize = 6;
pub const USER_AGENT: usize = 8;
pub const IP: usize = 9;
pub const LOCALE: usize = 10;

/// One event as upb would hold it (strings as spans of the request buffer).
#[derive(Clone, Debug, Default)]
pub struct EventFields {
    /// The event's serialized bytes as received (still holding the full IP: never written anywhere).
    pub raw: Span,
    /// String fields indexed by field number (1, 2, 4, 5, 6, 8, 9, 10; the other slots stay empty).
    pub strings: [Span; 11],
    /// `event_time` (seconds, nanos) when present.
    pub time: Option<(i64, i32)>,
    /// `page` (url, path, title, referrer) when present.
    pub page: Option<[Span; 4]>,
    /// `screen` (width, height) when present.
    pub screen: Option<(u32, u32)>,
    /// `utm` (source, medium, campaign, term, content) when present.
    pub utm: Option<[Span; 5]>,
    /// `revenue` (micros, currency) when present.
    pub revenue: Option<(i64, Span)>,
    /// `params`: a range of `Batch::params`, one entry per distinct key, in upb's deterministic order.
    pub params: (u32, u32),
}

/// A parsed batch: its events and their map entries, all pointing into the request buffer.
#[derive(Debug, Default)]
pub struct Batch {
    /// `batch_id`.
    pub id: Span,
    pub events: Vec<EventFields>,
    pub params: Vec<(Span, Span)>,
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    end: usize,
}

const WIRE_VARINT: u8 = 0;
const WIRE_FIXED64: u8 = 1;
const WIRE_LEN: u8 = 2;
const WIRE_FIXED32: u8 = 5;

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], span: Span) -> Self {
        let end = (span.end as usize).min(buf.len());
        Reader { buf, pos: (span.start as usize).min(end), end }
    }

    fn more(&self) -> bool {
        self.pos < self.end
    }

    #[inline]
    fn byte(&mut self) -> Option<u8> {
        if self.pos >= self.end {
            return None;
        }
        let b = *self.buf.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    /// A varint of at most 10 bytes (the 10th at most 1, so the value fits 64 bits exactly).
    #[inline]
    fn varint(&mut self) -> Option<u64> {
        let first = self.byte()?;
        if first < 0x80 {
            return Some(u64::from(first));
        }
        self.varint_rest(first)
    }

    #[inline(never)]
    fn varint_rest(&mut self, first: u8) -> Option<u64> {
        let mut value = u64::from(first & 0x7F);
        for i in 1..10 {
            let b = self.byte()?;
            if i == 9 && b > 1 {
                return None;
            }
            value |= u64::from(b & 0x7F) << (7 * i);
            if b < 0x80 {
                return Some(value);
            }
        }
        None
    }

    /// A varint used as a tag or a length: at most 5 bytes and minimally encoded.
    #[inline]
    fn small_varint(&mut self) -> Option<u32> {
        if let Some(&b) = self.buf.get(self.pos)
            && b < 0x80
            && self.pos < self.end
        {
            self.pos += 1;
            return Some(u32::from(b));
        }
        let start = self.pos;
        let value = self.varint()?;
        let used = self.pos - start;
        if used > 5 || (used > 1 && self.buf.get(self.pos - 1) == Some(&0)) {
            return None;
        }
        u32::try_from(value).ok()
    }

    /// (field number, wire type); field number 0 is refused.
    #[inline]
    fn tag(&mut self) -> Option<(u32, u8)> {
        let tag = self.small_varint()?;
        let field = tag >> 3;
        if field == 0 {
            return None;
        }
        Some((field, (tag & 7) as u8))
    }

    #[inline]
    fn delimited(&mut self) -> Option<Span> {
        let len = self.small_varint()? as usize;
        if len > self.end - self.pos || len > i32::MAX as usize {
            return None;
        }
        let span = Span { start: u32::try_from(self.pos).ok()?, end: u32::try_from(self.pos + len).ok()? };
        self.pos += len;
        Some(span)
    }

    #[inline]
    fn string(&mut self) -> Option<Span> {
        let span = self.delimited()?;
        let text = span.of(self.buf);
        if !text.is_ascii() {
            std::str::from_utf8(text).ok()?;
        }
        Some(span)
    }

    fn skip(&mut self, wire: u8) -> Option<()> {
        let fixed = match wire {
            WIRE_VARINT => return self.varint().map(|_| ()),
            WIRE_LEN => return self.delimited().map(|_| ()),
            WIRE_FIXED64 => 8,
            WIRE_FIXED32 => 4,
            _ => return None,
        };
        if self.end - self.pos < fixed {
            return None;
        }
        self.pos += fixed;
        Some(())
    }
}

/// Reads a message made only of string fields 1..=N into `slots` (merging into what is there).
fn read_strings<const N: usize>(buf: &[u8], span: Span, slots: &mut [Span; N]) -> Option<()> {
    let mut r = Reader::new(buf, span);
    while r.more() {
        let (field, wire) = r.tag()?;
        let index = field as usize;
        if (1..=N).contains(&index) {
            if wire != WIRE_LEN {
                return None;
            }
            slots[index - 1] = r.string()?;
        } else {
            r.skip(wire)?;
        }
    }
    Some(())
}

/// Reads a message made of two varint fields 1 and 2 (Timestamp, Screen) as raw u64 values.
fn read_two_varints(buf: &[u8], span: Span, values: &mut (u64, u64)) -> Option<()> {
    let mut r = Reader::new(buf, span);
    while r.more() {
        match r.tag()? {
            (1, WIRE_VARINT) => values.0 = r.varint()?,
            (2, WIRE_VARINT) => values.1 = r.varint()?,
            (1 | 2, _) => return None,
            (_, wire) => r.skip(wire)?,
        }
    }
    Some(())
}

fn read_revenue(buf: &[u8], span: Span, revenue: &mut (i64, Span)) -> Option<()> {
    let mut r = Reader::new(buf, span);
    while r.more() {
        match r.tag()? {
            (1, WIRE_VARINT) => revenue.0 = r.varint()? as i64,
            (2, WIRE_LEN) => revenue.1 = r.string()?,
            (1 | 2, _) => return None,
            (_, wire) => r.skip(wire)?,
        }
    }
    Some(())
}

/// One `params` map entry: (key, value), each "" when absent. Any other field: undecided.
fn read_map_entry(buf: &[u8], span: Span) -> Option<(Span, Span)> {
    let mut r = Reader::new(buf, span);
    let mut entry = (Span::default(), Span::default());
    while r.more() {
        match r.tag()? {
            (1, WIRE_LEN) => entry.0 = r.string()?,
            (2, WIRE_LEN) => entry.1 = r.string()?,
            _ => return None,
        }
    }
    Some(entry)
}

/// upb's deterministic order of string map keys: bytewise on the common prefix, then the longer key first.
pub fn upb_key_order(a: &[u8], b: &[u8]) -> Ordering {
    let n = a.len().min(b.len());
    a[..n].cmp(&b[..n]).then(b.len().cmp(&a.len()))
}

/// Keeps the last value of each key among `params[start..]`, sorted in upb's deterministic order.
fn settle_params(buf: &[u8], params: &mut Vec<(Span, Span)>, start: usize) {
    let tail = &mut params[start..];
    if tail.len() < 2 {
        return;
    }
    tail.reverse(); // the last occurrence of a key first, so that the stable sort keeps it first
    tail.sort_by(|a, b| upb_key_order(a.0.of(buf), b.0.of(buf)));
    let mut kept = 0;
    for i in 0..tail.len() {
        if kept == 0 || tail[i].0.of(buf) != tail[kept - 1].0.of(buf) {
            tail[kept] = tail[i];
            kept += 1;
        }
    }
    params.truncate(start + kept);
}

fn parse_event(buf: &[u8], span: Span, ev: &mut EventFields, params: &mut Vec<(Span, Span)>) -> Option<()> {
    ev.raw = span;
    let params_start = params.len();
    let mut r = Reader::new(buf, span);
    while r.more() {
        let (field, wire) = r.tag()?;
        if field > 14 {
            r.skip(wire)?;
            continue;
        }
        if wire != WIRE_LEN {
            return None; // every field of Event is length-delimited
        }
        let index = field as usize;
        match index {
            EVENT_ID | NAME | CLIENT_ID | USER_ID | SESSION_ID | USER_AGENT | IP | LOCALE => {
                ev.strings[index] = r.string()?;
            }
            3 => {
                let (seconds, nanos) = ev.time.unwrap_or_default();
                let mut raw = (seconds as u64, i64::from(nanos) as u64);
                read_two_varints(buf, r.delimited()?, &mut raw)?;
                ev.time = Some((raw.0 as i64, raw.1 as i32));
            }
            7 => read_strings(buf, r.delimited()?, ev.page.get_or_insert_default())?,
            11 => {
                let (width, height) = ev.screen.unwrap_or_default();
                let mut raw = (u64::from(width), u64::from(height));
                read_two_varints(buf, r.delimited()?, &mut raw)?;
                ev.screen = Some((raw.0 as u32, raw.1 as u32));
            }
            12 => read_strings(buf, r.delimited()?, ev.utm.get_or_insert_default())?,
            13 => read_revenue(buf, r.delimited()?, ev.revenue.get_or_insert_default())?,
            14 => params.push(read_map_entry(buf, r.delimited()?)?),
            _ => return None,
        }
    }
    settle_params(buf, params, params_start);
    ev.params = (u32::try_from(params_start).ok()?, u32::try_from(params.len()).ok()?);
    Some(())
}

/// Parses a serialized EventBatch of at most `max_events` events; `None` when not decided here (see module doc)
/// or when the batch holds more than `max_events` events.
pub fn parse_batch(buf: &[u8], max_events: usize) -> Option<Batch> {
    let whole = Span { start: 0, end: u32::try_from(buf.len()).ok()? };
    let mut batch = Batch { events: Vec::with_capacity(max_events.min(buf.len() / 16 + 1)), ..Batch::default() };
    let mut r = Reader::new(buf, whole);
    while r.more() {
        match r.tag()? {
            (1, WIRE_LEN) => {
                if batch.events.len() == max_events {
                    return None;
                }
                let span = r.delimited()?;
                batch.events.push(EventFields::default());
                let event = batch.events.last_mut()?;
                parse_event(buf, span, event, &mut batch.params)?;
            }
            (2, WIRE_LEN) => batch.id = r.string()?,
            (1 | 2, _) => return None,
            (_, wire) => r.skip(wire)?,
        }
    }
    Some(batch)
}

/// A parsed `gnomon.v1.LoggedBatch` (what the collector writes to the event log): its merchant, received time
/// and events, all pointing into the payload. `traceparent` and `collector_id` are checked (UTF-8) and dropped.
#[derive(Debug, Default)]
pub struct Logged {
    pub merchant: Span,
    /// `received_time` (seconds, nanos) when present.
    pub received: Option<(i64, i32)>,
    pub events: Vec<EventFields>,
    pub params: Vec<(Span, Span)>,
}

/// Parses a serialized LoggedBatch; `None` when not decided here (same rules as `parse_batch`, see the module
/// doc): the caller then parses it with upb.
pub fn parse_logged(buf: &[u8]) -> Option<Logged> {
    let whole = Span { start: 0, end: u32::try_from(buf.len()).ok()? };
    let mut logged = Logged::default();
    let mut r = Reader::new(buf, whole);
    while r.more() {
        match r.tag()? {
            (1, WIRE_LEN) => logged.merchant = r.string()?,
            (2, WIRE_LEN) => {
                let (seconds, nanos) = logged.received.unwrap_or_default();
                let mut raw = (seconds as u64, i64::from(nanos) as u64);
                read_two_varints(buf, r.delimited()?, &mut raw)?;
                logged.received = Some((raw.0 as i64, raw.1 as i32));
            }
            (3, WIRE_LEN) => {
                let span = r.delimited()?;
                logged.events.push(EventFields::default());
                let event = logged.events.last_mut()?;
                parse_event(buf, span, event, &mut logged.params)?;
            }
            (4 | 5, WIRE_LEN) => {
                r.string()?;
            }
            (1..=5, _) => return None,
            (_, wire) => r.skip(wire)?,
        }
    }
    Some(logged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_order_is_upbs() {
        let mut keys: Vec<&[u8]> = vec![b"b", b"a", b"ab", "é".as_bytes(), b"Z", b"", b"a\x00"];
        keys.sort_by(|a, b| upb_key_order(a, b));
        let want: Vec<&[u8]> = vec![b"Z", b"a\x00", b"ab", b"a", b"b", "é".as_bytes(), b""];
        assert_eq!(keys, want);
    }

    #[test]
    fn refuses_what_it_does_not_decide() {
        assert!(parse_batch(b"\x0a\x05\x0a\x01", 500).is_none()); // cut
        assert!(parse_batch(b"\x0b\x0c", 500).is_none()); // a group
        assert!(parse_batch(b"\x08\x01", 500).is_none()); // events with the wrong wire type
        assert!(parse_batch(b"\x12\x01\xff", 500).is_none()); // batch_id not UTF-8
        assert!(parse_batch(b"\x8a\x00\x00", 500).is_none()); // non-minimal tag
        assert!(parse_batch(b"\x0a\x00\x0a\x00", 1).is_none()); // over max_events
    }

    #[test]
    fn reads_a_logged_batch() {
        // merchant "m", received_time {seconds 2, nanos 5}, one event {event_id "e"}, collector_id "c",
        // an unknown varint field 9
        let raw = b"\x0a\x01m\x12\x04\x08\x02\x10\x05\x1a\x03\x0a\x01e\x2a\x01c\x48\x01";
        let logged = parse_logged(raw).expect("parsed");
        assert_eq!(logged.merchant.of(raw), b"m");
        assert_eq!(logged.received, Some((2, 5)));
        assert_eq!(logged.events.len(), 1);
        assert_eq!(logged.events[0].strings[EVENT_ID].of(raw), b"e");
        assert!(parse_logged(b"\x08\x01").is_none()); // merchant_id with the wrong wire type
        assert!(parse_logged(b"\x2a\x01\xff").is_none()); // collector_id not UTF-8
        assert!(parse_logged(b"\x1a\x02\x08\x01").is_none()); // an event field with the wrong wire type
    }

    #[test]
    fn merges_and_drops_like_upb() {
        // page twice (merged), name twice (last wins), an unknown varint field 20, a map key twice
        let raw = b"\x0a\x20\x3a\x03\x0a\x01a\x3a\x03\x12\x01b\x12\x01x\x12\x01y\xa0\x01\x05\
                    \x72\x03\x0a\x01k\x72\x06\x0a\x01k\x12\x01v";
        let batch = parse_batch(raw, 500).expect("parsed");
        let ev = &batch.events[0];
        assert_eq!(ev.strings[NAME].of(raw), b"y");
        let page = ev.page.expect("page");
        assert_eq!((page[0].of(raw), page[1].of(raw)), (&b"a"[..], &b"b"[..]));
        let (from, to) = ev.params;
        assert_eq!(to - from, 1);
        assert_eq!(batch.params[from as usize].1.of(raw), b"v");
    }
}
