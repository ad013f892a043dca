//! The rules of `collector_svc/validation.py` (`STEPS`), answered only as "certainly valid" or "check in
//! Python". Lengths count characters (Unicode code points, as Python's `len(str)`), names and currencies are
//! ASCII patterns, the time window is inclusive. The limits come from Python (`validation.py` constants).

use crate::ip::{Short, truncate_ip};
use crate::wire::{Batch, CLIENT_ID, EVENT_ID, EventFields, IP, LOCALE, NAME, SESSION_ID, Span, USER_AGENT, USER_ID};

/// The limits of validation.py, and the accepted `event_time.seconds` window (inclusive).
#[derive(Clone, Copy, Debug)]
#[allow(clippy::struct_field_names)] // named as the constants of validation.py
pub struct Limits {
    pub max_event_id: usize,
    pub max_name: usize,
    pub max_other: usize,
    pub max_user_agent: usize,
    pub max_url: usize,
    pub max_title: usize,
    pub max_params: usize,
    pub max_param_value: usize,
}

const NANOS_PER_S: i32 = 1_000_000_000;

/// What becomes of an event's `ip` in the output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpOut {
    /// No ip sent: the connection's (already truncated) address is written instead.
    Fallback,
    /// The /24 or /48 network of the ip sent.
    Network(Short),
    /// Not decided here (invalid, or the event is flagged anyway): Python gives the text to write.
    Undecided,
}

fn count_chars(text: &[u8]) -> usize {
    text.iter().filter(|&&b| (b as i8) >= -0x40).count()
}

/// `len(text) <= limit` for the UTF-8 `text` (bytes first: a character has at least one).
fn fits(text: &[u8], limit: usize) -> bool {
    text.len() <= limit || count_chars(text) <= limit
}

/// `NAME_RE.fullmatch`: `[A-Za-z][A-Za-z0-9_]*`, ASCII only.
fn is_name(text: &[u8]) -> bool {
    match text.split_first() {
        Some((first, rest)) => {
            first.is_ascii_alphabetic() && rest.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_')
        }
        None => false,
    }
}

/// `CURRENCY_RE.fullmatch`: `[A-Z]{3}`.
fn is_currency(text: &[u8]) -> bool {
    text.len() == 3 && text.iter().all(u8::is_ascii_uppercase)
}

/// True when every step of validation.py passes for this event, the `ip` step aside.
pub fn passes(buf: &[u8], batch: &Batch, ev: &EventFields, lim: &Limits, window: (i64, i64)) -> bool {
    let s = |field: usize| ev.strings[field].of(buf);
    let event_id = s(EVENT_ID);
    if event_id.is_empty() || !fits(event_id, lim.max_event_id) {
        return false;
    }
    let name = s(NAME);
    if name.len() > lim.max_name || !is_name(name) {
        return false; // ASCII when it is a name: bytes are characters
    }
    match ev.time {
        Some((seconds, nanos)) if (0..NANOS_PER_S).contains(&nanos) => {
            if seconds < window.0 || seconds > window.1 {
                return false;
            }
        }
        _ => return false,
    }
    let client_id = s(CLIENT_ID);
    if client_id.is_empty() || !fits(client_id, lim.max_other) {
        return false;
    }
    let others = [(USER_ID, lim.max_other), (SESSION_ID, lim.max_other), (USER_AGENT, lim.max_user_agent)];
    if !others.iter().all(|&(field, limit)| fits(s(field), limit)) || !fits(s(LOCALE), lim.max_other) {
        return false;
    }
    if let Some(page) = &ev.page {
        let limits = [lim.max_url, lim.max_url, lim.max_title, lim.max_url];
        if !page.iter().zip(limits).all(|(span, limit)| fits(span.of(buf), limit)) {
            return false;
        }
    }
    if let Some(utm) = &ev.utm
        && !utm.iter().all(|span| fits(span.of(buf), lim.max_other))
    {
        return false;
    }
    if let Some((_, currency)) = ev.revenue
        && !is_currency(currency.of(buf))
    {
        return false;
    }
    let params: &[(Span, Span)] = batch.params.get(ev.params.0 as usize..ev.params.1 as usize).unwrap_or_default();
    if params.len() > lim.max_params {
        return false;
    }
    params.iter().all(|(key, value)| {
        let key = key.of(buf);
        key.len() <= lim.max_name && is_name(key) && fits(value.of(buf), lim.max_param_value)
    })
}

/// The `ip` step and the value to write: `None` when the ip is not a valid address (or not decided here).
pub fn ip_out(buf: &[u8], ev: &EventFields) -> IpOut {
    let ip = ev.strings[IP].of(buf);
    if ip.is_empty() {
        return IpOut::Fallback;
    }
    truncate_ip(ip).map_or(IpOut::Undecided, IpOut::Network)
}
