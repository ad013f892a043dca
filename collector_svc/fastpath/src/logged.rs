//! The aggregator's decode of serialized `gnomon.v1.LoggedBatch` payloads into the columns of its event frame
//! (aggregator/decode.py, `RAW_COLUMNS`), in one pass over the bytes and without a Python object per field.
//!
//! Contract: for payloads that `wire::parse_logged` decides, the columns hold exactly what the Python path
//! reads from upb: strings as given ("" when absent; `page_path` as sent, Python fills the empty ones),
//! `event_time_us` = seconds * 1e6 + floor(nanos / 1000) in wrapping int64 arithmetic (as NumPy computes it),
//! `received_time_us` the batch's received time in microseconds (every event of a batch), `revenue_micros`.
//! `None` when any payload is not decided here or a received time does not fit int64 microseconds: the caller
//! then decodes all of them with upb, which names the problem.

use crate::wire::{self, CLIENT_ID, EVENT_ID, IP, LOCALE, NAME, Span, USER_AGENT, USER_ID};

/// The number of string columns; aggregator/decode_fast.py `STRING_COLUMNS` names them in `decode`'s order.
pub const N_STRINGS: usize = 16;

/// One string column: UTF-8 bytes back to back, and n + 1 offsets into them (Arrow's large_string layout).
pub struct Text {
    pub data: Vec<u8>,
    pub offsets: Vec<i64>,
}

impl Text {
    fn with_capacity(n: usize) -> Self {
        let mut offsets = Vec::with_capacity(n + 1);
        offsets.push(0);
        Text { data: Vec::new(), offsets }
    }

    #[inline]
    fn push(&mut self, value: &[u8]) {
        self.data.extend_from_slice(value);
        self.offsets.push(self.data.len() as i64);
    }
}

/// The decoded columns of a list of payloads; `raw` holds each event's serialized bytes as logged.
pub struct Columns {
    pub strings: Vec<Text>,
    pub event_time_us: Vec<i64>,
    pub received_time_us: Vec<i64>,
    pub revenue_micros: Vec<i64>,
    pub raw: Vec<(usize, Span)>,
}

/// Decodes every payload (see the module doc); `None` when the Python path must decode them.
pub fn decode(payloads: &[&[u8]]) -> Option<Columns> {
    let parsed: Vec<wire::Logged> = payloads.iter().map(|buf| wire::parse_logged(buf)).collect::<Option<_>>()?;
    let n: usize = parsed.iter().map(|logged| logged.events.len()).sum();
    let mut out = Columns {
        strings: (0..N_STRINGS).map(|_| Text::with_capacity(n)).collect(),
        event_time_us: Vec::with_capacity(n),
        received_time_us: Vec::with_capacity(n),
        revenue_micros: Vec::with_capacity(n),
        raw: Vec::with_capacity(n),
    };
    for (index, (logged, buf)) in parsed.iter().zip(payloads).enumerate() {
        if logged.events.is_empty() {
            continue; // its received time is not needed (nor checked, as in the Python path)
        }
        let (seconds, nanos) = logged.received.unwrap_or_default();
        let received = seconds.checked_mul(1_000_000)?.checked_add(i64::from(nanos).div_euclid(1000))?;
        let merchant = logged.merchant.of(buf);
        for ev in &logged.events {
            let text = |span: Span| span.of(buf);
            let page = ev.page.unwrap_or_default();
            let utm = ev.utm.unwrap_or_default();
            let (micros, currency) = ev.revenue.unwrap_or_default();
            let (t_seconds, t_nanos) = ev.time.unwrap_or_default();
            let row: [&[u8]; N_STRINGS] = [
                merchant,
                text(ev.strings[EVENT_ID]),
                text(ev.strings[NAME]),
                text(ev.strings[CLIENT_ID]),
                text(ev.strings[USER_ID]),
                text(page[0]), // url
                text(page[1]), // path
                text(page[2]), // title
                text(page[3]), // referrer
                text(ev.strings[USER_AGENT]),
                text(ev.strings[IP]),
                text(ev.strings[LOCALE]),
                text(utm[0]), // source
                text(utm[1]), // medium
                text(utm[2]), // campaign
                text(currency),
            ];
            for (column, value) in out.strings.iter_mut().zip(row) {
                column.push(value);
            }
            out.event_time_us.push(t_seconds.wrapping_mul(1_000_000).wrapping_add(i64::from(t_nanos).div_euclid(1000)));
            out.received_time_us.push(received);
            out.revenue_micros.push(micros);
            out.raw.push((index, ev.raw));
        }
    }
    Some(out)
}
