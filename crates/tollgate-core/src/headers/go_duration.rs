//! [`go_duration`]: Go's duration format, as OpenAI and Groq write their resets.

use std::time::Duration;

/// Parses a Go duration (`time.Duration.String()` output and everything `time.ParseDuration`
/// accepts), as OpenAI and Groq send in their reset headers: `"6m0s"`, `"8.64s"`, `"12ms"`,
/// `"1h2m3.5s"`, `"0s"`, `"250us"`, `"250µs"`, `"5ns"`, and the bare `"0"`.
///
/// Units are `h`, `m`, `s`, `ms`, `us`, `µs` (or `μs`) and `ns`. Negative, malformed and
/// overflowing values give `None`; precision finer than a nanosecond is dropped.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tollgate_core::headers::go_duration;
///
/// assert_eq!(go_duration("6m0s"), Some(Duration::from_secs(360)));
/// assert_eq!(go_duration("1h2m3.5s"), Some(Duration::from_millis(3_723_500)));
/// assert_eq!(go_duration("250µs"), Some(Duration::from_micros(250)));
/// assert_eq!(go_duration("-1s"), None);
/// assert_eq!(go_duration("soon"), None);
/// ```
pub fn go_duration(input: &str) -> Option<Duration> {
    const NANOS_PER_SEC: u128 = 1_000_000_000;
    let mut rest = input.trim();
    if let Some(stripped) = rest.strip_prefix('+') {
        rest = stripped;
    }
    if rest == "0" {
        return Some(Duration::ZERO);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        // integer part
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int_digits, after) = rest.split_at(int_len);
        rest = after;
        // fraction
        let mut frac_digits = "";
        if let Some(after_dot) = rest.strip_prefix('.') {
            let frac_len = after_dot.bytes().take_while(u8::is_ascii_digit).count();
            let (digits, after) = after_dot.split_at(frac_len);
            frac_digits = digits;
            rest = after;
        }
        if int_digits.is_empty() && frac_digits.is_empty() {
            return None;
        }
        // unit
        let (unit_nanos, unit_len): (u128, usize) = if rest.starts_with("ns") {
            (1, 2)
        } else if rest.starts_with("us") {
            (1_000, 2)
        } else if rest.starts_with("µs") || rest.starts_with("μs") {
            (1_000, "µs".len())
        } else if rest.starts_with("ms") {
            (1_000_000, 2)
        } else if rest.starts_with('s') {
            (NANOS_PER_SEC, 1)
        } else if rest.starts_with('m') {
            (60 * NANOS_PER_SEC, 1)
        } else if rest.starts_with('h') {
            (3_600 * NANOS_PER_SEC, 1)
        } else {
            return None;
        };
        rest = &rest[unit_len..];

        let mut whole: u128 = 0;
        for b in int_digits.bytes() {
            whole = whole.checked_mul(10)?.checked_add(u128::from(b - b'0'))?;
        }
        let mut nanos = whole.checked_mul(unit_nanos)?;
        // Fractions past 30 digits are far below a nanosecond for every unit.
        let mut scale: u128 = 1;
        let mut frac: u128 = 0;
        for b in frac_digits.bytes().take(30) {
            frac = frac * 10 + u128::from(b - b'0');
            scale *= 10;
        }
        nanos = nanos.checked_add(frac.checked_mul(unit_nanos)? / scale)?;
        total = total.checked_add(nanos)?;
    }
    let secs = u64::try_from(total / NANOS_PER_SEC).ok()?;
    let subsec = u32::try_from(total % NANOS_PER_SEC).ok()?;
    Some(Duration::new(secs, subsec))
}
