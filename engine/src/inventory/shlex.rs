//! Python's `shlex.split(line, comments=True)` (POSIX mode), which
//! ansible-core uses to cut an INI host line into `host key=value ...`
//! tokens. Quotes are removed, a backslash escapes the next character (inside
//! double quotes only `\` and `"`), and `#` outside quotes starts a comment
//! even in the middle of a word.

#[derive(Clone, Copy, PartialEq)]
enum State {
    Space,
    Word,
    Quote(char),
    Escape(char),
}

/// Split one line; an error names the problem as Python's `shlex` does.
pub(super) fn split(line: &str) -> Result<Vec<String>, String> {
    let mut tokens = Vec::new();
    let mut token = String::new();
    let mut quoted = false;
    let mut state = State::Space;
    for c in line.chars() {
        match state {
            State::Space | State::Word => {
                if matches!(c, ' ' | '\t' | '\r' | '\n') {
                    if state == State::Word && (!token.is_empty() || quoted) {
                        tokens.push(std::mem::take(&mut token));
                    }
                    quoted = false;
                    state = State::Space;
                } else if c == '#' {
                    break;
                } else if c == '\\' {
                    state = State::Escape('a');
                } else if c == '\'' || c == '"' {
                    state = State::Quote(c);
                } else {
                    token.push(c);
                    state = State::Word;
                }
            }
            State::Quote(q) => {
                quoted = true;
                if c == q {
                    state = State::Word;
                } else if c == '\\' && q == '"' {
                    state = State::Escape(q);
                } else {
                    token.push(c);
                }
            }
            State::Escape(back) => {
                if back != 'a' && c != '\\' && c != back {
                    token.push('\\');
                }
                token.push(c);
                state = if back == 'a' {
                    State::Word
                } else {
                    State::Quote(back)
                };
            }
        }
    }
    match state {
        State::Quote(_) => return Err("No closing quotation".into()),
        State::Escape(_) => return Err("No escaped character".into()),
        _ => {}
    }
    if !token.is_empty() || quoted {
        tokens.push(token);
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn like_python_shlex() {
        assert_eq!(
            split("h1 a=1 b='x y' c=\"'03'\"").unwrap(),
            ["h1", "a=1", "b=x y", "c='03'"]
        );
        assert_eq!(split("h1 pass=ab#c d=1").unwrap(), ["h1", "pass=ab"]);
        assert_eq!(split("h1 # comment").unwrap(), ["h1"]);
        assert_eq!(split("h1 x=''").unwrap(), ["h1", "x="]);
        assert_eq!(split("h1 ''").unwrap(), ["h1", ""]);
        assert_eq!(
            split(r#"h1 a=\"q\" b="x\y\"z""#).unwrap(),
            ["h1", "a=\"q\"", "b=x\\y\"z"]
        );
        assert_eq!(split("h1 a='#x'").unwrap(), ["h1", "a=#x"]);
        assert_eq!(split("h1 a='open").unwrap_err(), "No closing quotation");
        assert_eq!(split("h1 a\\").unwrap_err(), "No escaped character");
    }
}
