//! Writing events exactly as upb serializes them (the bytes Python's `Event.SerializeToString()` gives, with
//! map entries in upb's deterministic order): fields in field-number order; a proto3 string or number only
//! when it is not empty / zero; a present sub-message always (even empty); negative int32/int64 as 10-byte
//! varints; map entries with both key and value, even empty.

use crate::wire::{Batch, EventFields, IP, Span};

pub fn varint_len(value: u64) -> usize {
    // 1 byte per 7 significant bits, at least 1
    (64 - (value | 1).leading_zeros() as usize).div_ceil(7)
}

const fn tag(field: u8, wire: u8) -> u8 {
    (field << 3) | wire
}

const LEN: u8 = 2;
const VARINT: u8 = 0;

fn string_len(len: usize) -> usize {
    if len == 0 { 0 } else { 1 + varint_len(len as u64) + len }
}

fn number_len(value: u64) -> usize {
    if value == 0 { 0 } else { 1 + varint_len(value) }
}

fn message_len(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

fn time_len(time: (i64, i32)) -> usize {
    number_len(time.0 as u64) + number_len(i64::from(time.1) as u64)
}

fn screen_len(screen: (u32, u32)) -> usize {
    number_len(u64::from(screen.0)) + number_len(u64::from(screen.1))
}

fn strings_len(buf: &[u8], spans: &[Span]) -> usize {
    spans.iter().map(|s| string_len(s.of(buf).len())).sum()
}

fn revenue_len(buf: &[u8], revenue: (i64, Span)) -> usize {
    number_len(revenue.0 as u64) + string_len(revenue.1.of(buf).len())
}

fn entry_len(buf: &[u8], entry: (Span, Span)) -> usize {
    let (k, v) = (entry.0.of(buf).len(), entry.1.of(buf).len());
    1 + varint_len(k as u64) + k + 1 + varint_len(v as u64) + v
}

fn params_of<'b>(batch: &'b Batch, ev: &EventFields) -> &'b [(Span, Span)] {
    batch.params.get(ev.params.0 as usize..ev.params.1 as usize).unwrap_or_default()
}

/// The serialized size of `ev` without its `ip` field.
pub fn size_without_ip(buf: &[u8], batch: &Batch, ev: &EventFields) -> usize {
    let mut size: usize = ev
        .strings
        .iter()
        .enumerate()
        .filter(|&(field, _)| field != IP)
        .map(|(_, span)| string_len(span.of(buf).len()))
        .sum();
    size += ev.time.map_or(0, |t| message_len(time_len(t)));
    size += ev.page.map_or(0, |p| message_len(strings_len(buf, &p)));
    size += ev.screen.map_or(0, |s| message_len(screen_len(s)));
    size += ev.utm.map_or(0, |u| message_len(strings_len(buf, &u)));
    size += ev.revenue.map_or(0, |r| message_len(revenue_len(buf, r)));
    size += params_of(batch, ev).iter().map(|&e| message_len(entry_len(buf, e))).sum::<usize>();
    size
}

/// The serialized size of the event with `ip` as its ip field.
pub fn size_with_ip(size_without_ip: usize, ip: &[u8]) -> usize {
    size_without_ip + string_len(ip.len())
}

/// A bounded writer into a pre-sized buffer: writing past its end is reported, never a panic.
pub struct Writer<'a> {
    out: &'a mut [u8],
    pos: usize,
}

/// The computed size did not match what was written (a bug): reported to Python as an exception.
#[derive(Debug)]
pub struct SizeMismatch;

impl<'a> Writer<'a> {
    pub fn new(out: &'a mut [u8]) -> Self {
        Writer { out, pos: 0 }
    }

    pub fn finish(self) -> Result<(), SizeMismatch> {
        if self.pos == self.out.len() { Ok(()) } else { Err(SizeMismatch) }
    }

    pub fn bytes(&mut self, data: &[u8]) -> Result<(), SizeMismatch> {
        let end = self.pos + data.len();
        self.out.get_mut(self.pos..end).ok_or(SizeMismatch)?.copy_from_slice(data);
        self.pos = end;
        Ok(())
    }

    pub fn byte(&mut self, b: u8) -> Result<(), SizeMismatch> {
        *self.out.get_mut(self.pos).ok_or(SizeMismatch)? = b;
        self.pos += 1;
        Ok(())
    }

    pub fn varint(&mut self, mut value: u64) -> Result<(), SizeMismatch> {
        while value >= 0x80 {
            self.byte((value as u8) | 0x80)?;
            value >>= 7;
        }
        self.byte(value as u8)
    }

    fn string(&mut self, field: u8, data: &[u8]) -> Result<(), SizeMismatch> {
        if data.is_empty() {
            return Ok(());
        }
        self.byte(tag(field, LEN))?;
        self.varint(data.len() as u64)?;
        self.bytes(data)
    }

    fn number(&mut self, field: u8, value: u64) -> Result<(), SizeMismatch> {
        if value == 0 {
            return Ok(());
        }
        self.byte(tag(field, VARINT))?;
        self.varint(value)
    }

    fn message_head(&mut self, field: u8, len: usize) -> Result<(), SizeMismatch> {
        self.byte(tag(field, LEN))?;
        self.varint(len as u64)
    }

    fn strings(&mut self, buf: &[u8], spans: &[Span]) -> Result<(), SizeMismatch> {
        for (i, span) in spans.iter().enumerate() {
            self.string(i as u8 + 1, span.of(buf))?;
        }
        Ok(())
    }
}

/// Writes `ev` (without a tag or length of its own) with `ip` as its ip field.
pub fn write_event(w: &mut Writer, buf: &[u8], batch: &Batch, ev: &EventFields, ip: &[u8]) -> Result<(), SizeMismatch> {
    let s = |field: usize| ev.strings[field].of(buf);
    w.string(1, s(1))?;
    w.string(2, s(2))?;
    if let Some(time) = ev.time {
        w.message_head(3, time_len(time))?;
        w.number(1, time.0 as u64)?;
        w.number(2, i64::from(time.1) as u64)?;
    }
    for field in 4..=6 {
        w.string(field as u8, s(field))?;
    }
    if let Some(page) = ev.page {
        w.message_head(7, strings_len(buf, &page))?;
        w.strings(buf, &page)?;
    }
    w.string(8, s(8))?;
    w.string(9, ip)?;
    w.string(10, s(10))?;
    if let Some(screen) = ev.screen {
        w.message_head(11, screen_len(screen))?;
        w.number(1, u64::from(screen.0))?;
        w.number(2, u64::from(screen.1))?;
    }
    if let Some(utm) = ev.utm {
        w.message_head(12, strings_len(buf, &utm))?;
        w.strings(buf, &utm)?;
    }
    if let Some(revenue) = ev.revenue {
        w.message_head(13, revenue_len(buf, revenue))?;
        w.number(1, revenue.0 as u64)?;
        w.string(2, revenue.1.of(buf))?;
    }
    for &(key, value) in params_of(batch, ev) {
        let (k, v) = (key.of(buf), value.of(buf));
        w.message_head(14, entry_len(buf, (key, value)))?;
        // key and value are written even when empty, as upb does for map entries
        w.byte(tag(1, LEN))?;
        w.varint(k.len() as u64)?;
        w.bytes(k)?;
        w.byte(tag(2, LEN))?;
        w.varint(v.len() as u64)?;
        w.bytes(v)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::varint_len;

    #[test]
    fn varint_lengths() {
        assert_eq!(varint_len(0), 1);
        assert_eq!(varint_len(127), 1);
        assert_eq!(varint_len(128), 2);
        assert_eq!(varint_len(u64::MAX), 10);
        assert_eq!(varint_len(-1i64 as u64), 10);
    }
}
