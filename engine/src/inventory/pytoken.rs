//! Tokenizer for the subset of Python source that `ast.literal_eval` can
//! accept: numbers (with `_`, hex/octal/binary, floats, imaginary), string
//! and bytes literals (prefixes, escapes, triple quotes), names, brackets and
//! the few operators literals use. Anything else is an error, which the INI
//! reader turns into "keep the raw string", exactly as ansible-core does when
//! `literal_eval` raises `SyntaxError`/`ValueError`.

/// One Python token.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    /// An integer literal, already evaluated (None when it overflows i128:
    /// then `big` holds an approximation).
    Int(Option<i128>, f64),
    Float(f64),
    /// An imaginary literal (its value times j).
    Imag(f64),
    Str(String),
    Bytes(Vec<u8>),
    Name(String),
    /// One of `[ ] ( ) { } , : + -` or `.` for `...`.
    Op(char),
    Ellipsis,
}

/// Split `src` into tokens; `None` when Python would raise `SyntaxError`
/// (or when the text uses something outside the literal subset).
pub(super) fn tokenize(src: &str) -> Option<Vec<Tok>> {
    let c: Vec<char> = src.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < c.len() {
        let ch = c[i];
        if ch == ' ' || ch == '\t' || ch == '\x0c' {
            i += 1;
        } else if ch == '#' {
            break;
        } else if ch == '\0' || ch == '\n' || ch == '\r' {
            return None;
        } else if ch.is_ascii_digit()
            || (ch == '.' && c.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            let (tok, next) = number(&c, i)?;
            out.push(tok);
            i = next;
        } else if ch == '.' {
            if c.get(i + 1) == Some(&'.') && c.get(i + 2) == Some(&'.') {
                out.push(Tok::Ellipsis);
                i += 3;
            } else {
                return None;
            }
        } else if ch == '\'' || ch == '"' {
            let (tok, next) = string(&c, i, "")?;
            out.push(tok);
            i = next;
        } else if ch == '_' || ch.is_alphabetic() {
            let start = i;
            while i < c.len() && (c[i] == '_' || c[i].is_alphanumeric()) {
                i += 1;
            }
            let name: String = c[start..i].iter().collect();
            if matches!(c.get(i), Some('\'') | Some('"')) {
                let (tok, next) = string(&c, i, &name)?;
                out.push(tok);
                i = next;
            } else {
                out.push(Tok::Name(name));
            }
        } else if "[](){},:+-".contains(ch) {
            out.push(Tok::Op(ch));
            i += 1;
        } else {
            return None;
        }
    }
    Some(out)
}

/// Digits of one `digitpart` (digits with single `_` between them).
fn digitpart(c: &[char], mut i: usize, ok: fn(char) -> bool) -> Option<(String, usize)> {
    let mut s = String::new();
    if !c.get(i).is_some_and(|&d| ok(d)) {
        return None;
    }
    while i < c.len() {
        if ok(c[i]) {
            s.push(c[i]);
            i += 1;
        } else if c[i] == '_' && c.get(i + 1).is_some_and(|&d| ok(d)) {
            i += 1;
        } else {
            break;
        }
    }
    Some((s, i))
}

fn number(c: &[char], start: usize) -> Option<(Tok, usize)> {
    let at = |i: usize| c.get(i).copied().unwrap_or('\0');
    if at(start) == '0' && matches!(at(start + 1), 'x' | 'X' | 'o' | 'O' | 'b' | 'B') {
        let (radix, ok): (u32, fn(char) -> bool) = match at(start + 1).to_ascii_lowercase() {
            'x' => (16, |d| d.is_ascii_hexdigit()),
            'o' => (8, |d| ('0'..='7').contains(&d)),
            _ => (2, |d| d == '0' || d == '1'),
        };
        let mut i = start + 2;
        if at(i) == '_' {
            i += 1;
        }
        let (digits, next) = digitpart(c, i, ok)?;
        if at(next) == '_' || at(next).is_alphanumeric() {
            return None;
        }
        return Some((int_tok(&digits, radix), next));
    }
    let dec = |d: char| d.is_ascii_digit();
    let (int_part, mut i) = match digitpart(c, start, dec) {
        Some((s, n)) => (s, n),
        None => (String::new(), start),
    };
    let mut is_float = false;
    let mut text = int_part.clone();
    if at(i) == '.' {
        is_float = true;
        text.push('.');
        i += 1;
        if let Some((frac, n)) = digitpart(c, i, dec) {
            text.push_str(&frac);
            i = n;
        }
    }
    if matches!(at(i), 'e' | 'E') {
        let mut j = i + 1;
        let mut exp = String::from("e");
        if matches!(at(j), '+' | '-') {
            exp.push(at(j));
            j += 1;
        }
        let (d, n) = digitpart(c, j, dec)?;
        exp.push_str(&d);
        text.push_str(&exp);
        is_float = true;
        i = n;
    }
    if matches!(at(i), 'j' | 'J') {
        i += 1;
        if at(i) == '_' || at(i).is_alphanumeric() {
            return None;
        }
        return Some((Tok::Imag(text.parse().ok()?), i));
    }
    if at(i) == '_' || at(i).is_alphanumeric() {
        return None;
    }
    if is_float {
        return Some((Tok::Float(text.parse().ok()?), i));
    }
    // Python forbids leading zeros in a non-zero decimal integer.
    if int_part.len() > 1 && int_part.starts_with('0') && int_part.chars().any(|d| d != '0') {
        return None;
    }
    Some((int_tok(&int_part, 10), i))
}

fn int_tok(digits: &str, radix: u32) -> Tok {
    let approx = if radix == 10 {
        digits.parse().ok()
    } else {
        None
    };
    let approx = approx.unwrap_or_else(|| {
        digits.chars().fold(0f64, |acc, d| {
            acc * f64::from(radix) + f64::from(d.to_digit(radix).unwrap_or(0))
        })
    });
    Tok::Int(i128::from_str_radix(digits, radix).ok(), approx)
}

/// Python's `repr()` of a float (shortest round-trip digits, exponent form
/// outside 1e-4..1e16). With `int_like`, a whole number prints without `.0`
/// (as Python prints the parts of a complex number).
pub(super) fn py_float_str(v: f64, int_like: bool) -> String {
    if v.is_infinite() {
        return if v > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if v.is_nan() {
        return "nan".into();
    }
    let sci = format!("{v:e}");
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let neg = mant.starts_with('-');
    let digits: String = mant.chars().filter(|d| d.is_ascii_digit()).collect();
    let sign = if neg { "-" } else { "" };
    if (-4..16).contains(&exp) {
        let n = digits.len() as i32;
        let s = if exp >= n - 1 {
            format!("{digits}{}", "0".repeat((exp - n + 1) as usize))
        } else if exp >= 0 {
            let (a, b) = digits.split_at((exp + 1) as usize);
            return format!("{sign}{a}.{b}");
        } else {
            return format!("{sign}0.{}{digits}", "0".repeat((-exp - 1) as usize));
        };
        if int_like {
            format!("{sign}{s}")
        } else {
            format!("{sign}{s}.0")
        }
    } else {
        let (a, b) = digits.split_at(1);
        let m = if b.is_empty() {
            a.to_string()
        } else {
            format!("{a}.{b}")
        };
        format!(
            "{sign}{m}e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.abs()
        )
    }
}

/// A string or bytes literal starting at `c[start]` (the quote), with the
/// already-read `prefix` letters.
fn string(c: &[char], start: usize, prefix: &str) -> Option<(Tok, usize)> {
    let p = prefix.to_ascii_lowercase();
    let (raw, bytes) = match p.as_str() {
        "" | "u" => (false, false),
        "r" => (true, false),
        "b" => (false, true),
        "br" | "rb" => (true, true),
        _ => return None, // f-strings are not literals; other prefixes are syntax errors
    };
    let q = c[start];
    let triple = c.get(start + 1) == Some(&q) && c.get(start + 2) == Some(&q);
    let mut i = if triple { start + 3 } else { start + 1 };
    let mut body: Vec<char> = Vec::new();
    loop {
        let ch = *c.get(i)?;
        if ch == q && (!triple || (c.get(i + 1) == Some(&q) && c.get(i + 2) == Some(&q))) {
            i += if triple { 3 } else { 1 };
            break;
        }
        if ch == '\\' {
            body.push(ch);
            body.push(*c.get(i + 1)?);
            i += 2;
            continue;
        }
        body.push(ch);
        i += 1;
    }
    let text = if raw {
        body.iter().collect()
    } else {
        unescape(&body, bytes)?
    };
    if bytes {
        if !text.chars().all(|ch| (ch as u32) < 256) || body.iter().any(|ch| !ch.is_ascii()) {
            return None;
        }
        return Some((Tok::Bytes(text.chars().map(|ch| ch as u8).collect()), i));
    }
    Some((Tok::Str(text), i))
}

/// Python escape sequences. For bytes, chars stand for byte values.
fn unescape(b: &[char], bytes: bool) -> Option<String> {
    let mut s = String::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != '\\' {
            s.push(b[i]);
            i += 1;
            continue;
        }
        let e = b[i + 1];
        i += 2;
        let simple = match e {
            '\\' => Some('\\'),
            '\'' => Some('\''),
            '"' => Some('"'),
            'a' => Some('\x07'),
            'b' => Some('\x08'),
            'f' => Some('\x0c'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            't' => Some('\t'),
            'v' => Some('\x0b'),
            _ => None,
        };
        if let Some(ch) = simple {
            s.push(ch);
        } else if ('0'..='7').contains(&e) {
            let mut v = e.to_digit(8)?;
            let mut n = 1;
            while n < 3 && i < b.len() && ('0'..='7').contains(&b[i]) {
                v = v * 8 + b[i].to_digit(8)?;
                i += 1;
                n += 1;
            }
            s.push(char::from_u32(if bytes { v & 0xff } else { v })?);
        } else if e == 'x' || (!bytes && (e == 'u' || e == 'U')) {
            let n = match e {
                'x' => 2,
                'u' => 4,
                _ => 8,
            };
            let hex: String = b.get(i..i + n)?.iter().collect();
            if !hex.chars().all(|h| h.is_ascii_hexdigit()) {
                return None;
            }
            s.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
            i += n;
        } else if e == 'N' && !bytes {
            return None; // \N{NAME} needs the Unicode name table; keep the raw text
        } else {
            s.push('\\');
            s.push(e);
        }
    }
    Some(s)
}

/// Python's `str()` of a complex number.
pub(super) fn py_complex_str(re: f64, im: f64) -> String {
    let imag = py_float_str(im.abs(), true);
    if re == 0.0 && !re.is_sign_negative() {
        let sign = if im.is_sign_negative() { "-" } else { "" };
        return format!("{sign}{imag}j");
    }
    let sign = if im.is_sign_negative() { '-' } else { '+' };
    format!("({}{sign}{imag}j)", py_float_str(re, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(tokenize("1_000"), Some(vec![Tok::Int(Some(1000), 1000.0)]));
        assert_eq!(tokenize("0x1F"), Some(vec![Tok::Int(Some(31), 31.0)]));
        assert_eq!(
            tokenize("0o17 0b101"),
            Some(vec![Tok::Int(Some(15), 15.0), Tok::Int(Some(5), 5.0)])
        );
        assert_eq!(tokenize("00"), Some(vec![Tok::Int(Some(0), 0.0)]));
        assert_eq!(tokenize("0755"), None);
        assert_eq!(tokenize("1__0"), None);
        assert_eq!(tokenize("1e3"), Some(vec![Tok::Float(1000.0)]));
        assert_eq!(
            tokenize(".5 5."),
            Some(vec![Tok::Float(0.5), Tok::Float(5.0)])
        );
        assert_eq!(tokenize("1j"), Some(vec![Tok::Imag(1.0)]));
        assert_eq!(tokenize("1.5J"), Some(vec![Tok::Imag(1.5)]));
        assert_eq!(tokenize("12abc"), None);
    }

    #[test]
    fn float_repr() {
        assert_eq!(py_float_str(1.5, false), "1.5");
        assert_eq!(py_float_str(1.0, false), "1.0");
        assert_eq!(py_float_str(1e16, false), "1e+16");
        assert_eq!(py_float_str(1.5e-7, false), "1.5e-07");
        assert_eq!(py_float_str(0.001, false), "0.001");
        assert_eq!(py_float_str(123.0, true), "123");
        assert_eq!(py_complex_str(-1.0, 2.0), "(-1+2j)");
        assert_eq!(py_complex_str(0.0, 2.0), "2j");
        assert_eq!(py_complex_str(-0.0, -2.0), "(-0-2j)");
    }

    #[test]
    fn strings() {
        assert_eq!(tokenize(r"'a\nb'"), Some(vec![Tok::Str("a\nb".into())]));
        assert_eq!(tokenize(r"r'\d'"), Some(vec![Tok::Str(r"\d".into())]));
        assert_eq!(
            tokenize(r"'\x41\u00e9\101\q'"),
            Some(vec![Tok::Str("Aé\u{41}\\q".into())])
        );
        assert_eq!(tokenize("'''tri'''"), Some(vec![Tok::Str("tri".into())]));
        assert_eq!(tokenize("b'ab'"), Some(vec![Tok::Bytes(b"ab".to_vec())]));
        assert_eq!(tokenize("f'x'"), None);
        assert_eq!(tokenize("'open"), None);
        assert_eq!(tokenize("'x' # c"), Some(vec![Tok::Str("x".into())]));
    }
}
