//! IP truncation with exactly the accepted inputs and the textual output of `collector_svc/iptrunc.py`
//! (`truncate_ip`, which uses Python 3.11's `ipaddress` rules): /24 for IPv4, /48 for IPv6, IPv4-mapped IPv6
//! truncated as IPv4, zone ids dropped. Only the truncated network is ever produced.

/// A truncated address as text: at most "255.255.255.0" or "ffff:ffff:ffff::".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Short {
    bytes: [u8; 24],
    len: u8,
}

impl Short {
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    fn push(&mut self, text: &[u8]) {
        let at = self.len as usize;
        if let Some(dst) = self.bytes.get_mut(at..at + text.len()) {
            dst.copy_from_slice(text);
            self.len += text.len() as u8;
        }
    }

    fn push_decimal(&mut self, value: u8) {
        let digits = [b'0' + value / 100, b'0' + value / 10 % 10, b'0' + value % 10];
        let skip = if value >= 100 {
            0
        } else if value >= 10 {
            1
        } else {
            2
        };
        self.push(&digits[skip..]);
    }

    fn push_hex(&mut self, value: u16) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let nibbles = [value >> 12, (value >> 8) & 15, (value >> 4) & 15, value & 15];
        let first = nibbles.iter().position(|&n| n != 0).unwrap_or(3);
        for &n in &nibbles[first..] {
            self.push(&[HEX[n as usize]]);
        }
    }

    fn v4_network(addr: u32) -> Short {
        let mut out = Short::default();
        let [a, b, c, _] = addr.to_be_bytes();
        for octet in [a, b, c] {
            out.push_decimal(octet);
            out.push(b".");
        }
        out.push(b"0");
        out
    }
}

/// Python's `_V4` regex and `IPv4Address._ip_int_from_string`: four ASCII decimal octets 0..=255 without
/// leading zeros, separated by dots.
fn parse_v4(text: &[u8]) -> Option<u32> {
    let mut value: u32 = 0;
    let mut octets = 0;
    let mut octet: u32 = 0;
    let mut digits = 0;
    for (i, &b) in text.iter().enumerate() {
        if b == b'.' || i + 1 == text.len() {
            if b != b'.' {
                if !b.is_ascii_digit() || (digits == 1 && octet == 0) {
                    return None;
                }
                octet = octet * 10 + u32::from(b - b'0');
                digits += 1;
            }
            if digits == 0 || digits > 3 || octet > 255 || octets == 4 {
                return None;
            }
            value = (value << 8) | octet;
            octets += 1;
            (octet, digits) = (0, 0);
            if b == b'.' && i + 1 == text.len() {
                return None; // a trailing dot: an empty last octet
            }
        } else if b.is_ascii_digit() {
            if digits == 1 && octet == 0 {
                return None; // a leading zero
            }
            octet = octet * 10 + u32::from(b - b'0');
            digits += 1;
            if digits > 3 {
                return None;
            }
        } else {
            return None;
        }
    }
    (octets == 4).then_some(value)
}

#[derive(Clone, Copy)]
enum Part {
    Empty,
    Hextet(u16),
}

/// `ipaddress._BaseV6._parse_hextet`: 1 to 4 ASCII hex digits.
fn parse_hextet(text: &[u8]) -> Option<Part> {
    if text.is_empty() {
        return Some(Part::Empty);
    }
    if text.len() > 4 {
        return None;
    }
    let mut value: u16 = 0;
    for &b in text {
        let digit = (b as char).to_digit(16)?;
        value = (value << 4) | digit as u16;
    }
    Some(Part::Hextet(value))
}

/// `ipaddress.IPv6Address._ip_int_from_string` (without the zone id, already split off).
fn parse_v6(text: &[u8]) -> Option<u128> {
    const HEXTETS: usize = 8;
    if text.is_empty() {
        return None;
    }
    let count = text.split(|&b| b == b':').count();
    if !(3..=HEXTETS + 1).contains(&count) {
        return None; // an IPv4 suffix would only add one more part: still too many
    }
    let mut parts = [Part::Empty; HEXTETS + 2];
    let mut n = 0;
    for (i, piece) in text.split(|&b| b == b':').enumerate() {
        if i + 1 == count && piece.contains(&b'.') {
            let v4 = parse_v4(piece)?;
            parts[n] = Part::Hextet((v4 >> 16) as u16);
            parts[n + 1] = Part::Hextet(v4 as u16);
            n += 2;
        } else {
            parts[n] = parse_hextet(piece)?; // a bad hextet is never skipped by the rules below
            n += 1;
        }
    }
    if n > HEXTETS + 1 {
        return None;
    }
    let parts = &parts[..n];
    let is_empty = |p: &Part| matches!(p, Part::Empty);
    let mut skip = None;
    for (i, part) in parts.iter().enumerate().take(n - 1).skip(1) {
        if is_empty(part) {
            if skip.is_some() {
                return None;
            }
            skip = Some(i);
        }
    }
    let (hi, lo, skipped) = if let Some(at) = skip {
        let mut hi = at;
        let mut lo = n - at - 1;
        if is_empty(&parts[0]) {
            hi -= 1;
            if hi != 0 {
                return None;
            }
        }
        if is_empty(&parts[n - 1]) {
            lo -= 1;
            if lo != 0 {
                return None;
            }
        }
        if hi + lo >= HEXTETS {
            return None;
        }
        (hi, lo, HEXTETS - hi - lo)
    } else {
        if n != HEXTETS || is_empty(&parts[0]) || is_empty(&parts[n - 1]) {
            return None;
        }
        (n, 0, 0)
    };
    let hextet = |p: &Part| match p {
        Part::Hextet(v) => Some(u128::from(*v)),
        Part::Empty => None, // Python: int('', 16) fails
    };
    let mut value: u128 = 0;
    for part in &parts[..hi] {
        value = (value << 16) | hextet(part)?;
    }
    value = value.checked_shl(16 * skipped as u32).unwrap_or(0);
    for part in &parts[n - lo..] {
        value = (value << 16) | hextet(part)?;
    }
    Some(value)
}

fn count_chars(text: &[u8]) -> usize {
    text.iter().filter(|&&b| (b as i8) >= -0x40).count()
}

/// `truncate_ip(text)` of collector_svc/iptrunc.py; `text` is valid UTF-8.
pub fn truncate_ip(text: &[u8]) -> Option<Short> {
    const MAX_IP_TEXT: usize = 64;
    if text.len() <= 15 && parse_v4(text).is_some() {
        // as iptrunc.py: the text up to its last dot, then ".0" (the octets are already canonical)
        let mut out = Short::default();
        let cut = text.iter().rposition(|&b| b == b'.').unwrap_or(0);
        out.push(&text[..cut]);
        out.push(b".0");
        return Some(out);
    }
    if (text.len() > MAX_IP_TEXT && count_chars(text) > MAX_IP_TEXT) || !text.contains(&b':') {
        return None;
    }
    if text.contains(&b'/') {
        return None;
    }
    let addr = match text.iter().position(|&b| b == b'%') {
        None => text,
        Some(at) => {
            let zone = &text[at + 1..];
            if zone.is_empty() || zone.contains(&b'%') {
                return None;
            }
            &text[..at]
        }
    };
    let value = parse_v6(addr)?;
    if value >> 32 == 0xFFFF {
        return Some(Short::v4_network(value as u32));
    }
    let top = [(value >> 112) as u16, (value >> 96) as u16, (value >> 80) as u16];
    let mut out = Short::default();
    // the low 80 bits are zero, so the longest run of zero hextets is the trailing one: "a:b:c::"
    if let Some(last) = top.iter().rposition(|&h| h != 0) {
        for (i, &h) in top[..=last].iter().enumerate() {
            if i > 0 {
                out.push(b":");
            }
            out.push_hex(h);
        }
    }
    out.push(b"::");
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::truncate_ip;

    fn t(text: &str) -> Option<String> {
        truncate_ip(text.as_bytes()).map(|s| String::from_utf8(s.as_bytes().to_vec()).unwrap_or_default())
    }

    #[test]
    fn like_iptrunc_py() {
        assert_eq!(t("203.0.113.77").as_deref(), Some("203.0.113.0"));
        assert_eq!(t("0.0.0.0").as_deref(), Some("0.0.0.0"));
        assert_eq!(t("2001:db8:abcd:12:34::5").as_deref(), Some("2001:db8:abcd::"));
        assert_eq!(t("::ffff:10.1.2.3").as_deref(), Some("10.1.2.0"));
        assert_eq!(t("fe80::1%eth0").as_deref(), Some("fe80::"));
        assert_eq!(t("::").as_deref(), Some("::"));
        assert_eq!(t("0:5::1").as_deref(), Some("0:5::"));
        assert_eq!(t("1:0:2:3:4:5:6:7").as_deref(), Some("1:0:2::"));
        for bad in ["", "01.2.3.4", "1.2.3", "256.1.1.1", "x", "1.2.3.4\n", ":::", "1::2::3", "fe80::1%", "::/0"] {
            assert_eq!(t(bad), None, "{bad:?}");
        }
    }
}
