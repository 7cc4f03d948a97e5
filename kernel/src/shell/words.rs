//! Splitting a command line into words.
//!
//! Words are separated by ASCII whitespace. `"..."` and `'...'` quote
//! text literally (no escapes inside); quoted and unquoted parts that touch
//! form one word (`a"b c"` is `ab c`), and `""` is an empty word.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// Why a line could not be split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WordsError {
    /// A quote (the character given) was opened and never closed.
    UnterminatedQuote(char),
}

impl fmt::Display for WordsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WordsError::UnterminatedQuote(q) => write!(f, "unterminated quote {q}"),
        }
    }
}

/// Splits `line` into words.
pub fn split(line: &str) -> Result<Vec<String>, WordsError> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => word.push(c),
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                in_word = true;
            }
            None if c.is_ascii_whitespace() => {
                if in_word {
                    words.push(core::mem::take(&mut word));
                    in_word = false;
                }
            }
            None => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if let Some(q) = quote {
        return Err(WordsError::UnterminatedQuote(q));
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn splitting() {
        assert_eq!(split("").unwrap(), Vec::<String>::new());
        assert_eq!(split("  \t ").unwrap(), Vec::<String>::new());
        assert_eq!(split(" echo  a\tb ").unwrap(), vec!["echo", "a", "b"]);
        assert_eq!(
            split(r#"echo "a  b" 'c "d"' e"f g"h"#).unwrap(),
            vec!["echo", "a  b", "c \"d\"", "ef gh"]
        );
        assert_eq!(split(r#"x "" ''"#).unwrap(), vec!["x", "", ""]);
        assert_eq!(split("echo \"abc"), Err(WordsError::UnterminatedQuote('"')));
        assert_eq!(split("echo 'abc"), Err(WordsError::UnterminatedQuote('\'')));
    }
}
