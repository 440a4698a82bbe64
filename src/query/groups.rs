//! The syntax of `or=` groups (data.gouv.fr's): `or=(col__op.value,col2__isnull,and(a__greater.1,
//! b__less.5))`, with `and(…)` and `or(…)` nested, a name or value in double quotes when it holds
//! `.` `,` `(` `)` or `"` (a quote inside doubled), and a list for `in`/`notin` as `.(a,b)`. This
//! module reads the text into a tree of untyped terms, within limits on terms and depth (so no
//! input nests deep enough to exhaust the stack); [`crate::query::params`] types them.

use crate::error::{Error, Result};

/// How deep `and(…)`/`or(…)` may nest inside a group.
pub const MAX_DEPTH: usize = 8;

/// A term of a group, before its column and values are checked.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Leaf(Leaf),
    Any(Vec<Node>),
    All(Vec<Node>),
}

/// `name__op.value`, `name__op.(a,b)` or `name__op`.
#[derive(Debug, Clone, PartialEq)]
pub struct Leaf {
    pub name: String,
    pub op: String,
    /// `None` without a value; one item for a plain value, the items of a `(…)` list.
    pub values: Option<Vec<String>>,
    /// Whether the value was a `(…)` list.
    pub list: bool,
}

/// Reads the value of an `or=` parameter: `(term,term,…)`.
pub fn parse(text: &str, max_terms: usize) -> Result<Node> {
    let mut p = Reader {
        chars: text.chars().collect(),
        at: 0,
        terms: 0,
        max_terms,
        text,
    };
    let items = p.group(1)?;
    if p.at != p.chars.len() {
        return Err(p.fail("text after the closing parenthesis"));
    }
    Ok(Node::Any(items))
}

struct Reader<'a> {
    chars: Vec<char>,
    at: usize,
    terms: usize,
    max_terms: usize,
    text: &'a str,
}

impl Reader<'_> {
    fn fail(&self, what: &str) -> Error {
        Error::bad_request(format!(
            "`or={}`: {what} at character {}; write or=(col__op.value,…), with and(…) and or(…) \
             nested, and names or values holding . , ( ) or \" in double quotes",
            self.text,
            self.at + 1
        ))
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn expect(&mut self, c: char) -> Result<()> {
        if self.peek() == Some(c) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.fail(&format!("`{c}` expected")))
        }
    }

    /// `(term,term,…)` at nesting `depth`.
    fn group(&mut self, depth: usize) -> Result<Vec<Node>> {
        if depth > MAX_DEPTH {
            return Err(self.fail(&format!("groups nest deeper than {MAX_DEPTH} levels")));
        }
        self.expect('(')?;
        let mut items = vec![self.term(depth)?];
        while self.peek() == Some(',') {
            self.at += 1;
            items.push(self.term(depth)?);
        }
        self.expect(')')?;
        Ok(items)
    }

    fn term(&mut self, depth: usize) -> Result<Node> {
        for (word, all) in [("and(", true), ("or(", false)] {
            let ahead: String = self.chars[self.at..].iter().take(word.len()).collect();
            if ahead == word {
                self.at += word.len() - 1;
                let items = self.group(depth + 1)?;
                return Ok(if all {
                    Node::All(items)
                } else {
                    Node::Any(items)
                });
            }
        }
        self.terms += 1;
        if self.terms > self.max_terms {
            return Err(self.fail(&format!("more than {} conditions", self.max_terms)));
        }
        self.leaf().map(Node::Leaf)
    }

    fn leaf(&mut self) -> Result<Leaf> {
        let (name, op) = if self.peek() == Some('"') {
            let name = self.quoted()?;
            if !self.chars[self.at..].starts_with(&['_', '_']) {
                return Err(self.fail("`__` and an operator expected after the quoted name"));
            }
            self.at += 2;
            (name, self.bare(&['.', ',', ')'])?)
        } else {
            let key = self.bare(&['.', ',', ')'])?;
            match key.rsplit_once("__") {
                Some((name, op)) if !name.is_empty() => (name.to_string(), op.to_string()),
                _ => return Err(self.fail(&format!("`{key}` is not column__operator"))),
            }
        };
        if op.is_empty() {
            return Err(self.fail("an operator expected after `__`"));
        }
        if self.peek() != Some('.') {
            return Ok(Leaf {
                name,
                op,
                values: None,
                list: false,
            });
        }
        self.at += 1;
        let (values, list) = match self.peek() {
            Some('(') => {
                self.at += 1;
                let mut items = vec![self.value()?];
                while self.peek() == Some(',') {
                    self.at += 1;
                    items.push(self.value()?);
                }
                self.expect(')')?;
                (items, true)
            }
            _ => (vec![self.value()?], false),
        };
        Ok(Leaf {
            name,
            op,
            values: Some(values),
            list,
        })
    }

    /// A value: quoted, or bare up to the next `,` or `)` (dots allowed: `lat__greater.33.5`).
    fn value(&mut self) -> Result<String> {
        if self.peek() == Some('"') {
            self.quoted()
        } else {
            self.bare(&[',', ')'])
        }
    }

    /// Characters up to one of `ends` (a quote or an opening parenthesis is an error there).
    fn bare(&mut self, ends: &[char]) -> Result<String> {
        let start = self.at;
        while let Some(c) = self.peek() {
            if ends.contains(&c) {
                break;
            }
            if c == '"' || c == '(' {
                return Err(self.fail(&format!("`{c}` inside a bare name or value")));
            }
            self.at += 1;
        }
        if self.peek().is_none() {
            return Err(self.fail("unbalanced parentheses: `)` expected"));
        }
        Ok(self.chars[start..self.at].iter().collect())
    }

    /// `"…"`, a doubled quote standing for one.
    fn quoted(&mut self) -> Result<String> {
        self.at += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return Err(self.fail("a quoted name or value is not closed")),
                Some('"') if self.chars.get(self.at + 1) == Some(&'"') => {
                    out.push('"');
                    self.at += 2;
                }
                Some('"') => {
                    self.at += 1;
                    return Ok(out);
                }
                Some(c) => {
                    out.push(c);
                    self.at += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(name: &str, op: &str, values: Option<&[&str]>, list: bool) -> Node {
        Node::Leaf(Leaf {
            name: name.into(),
            op: op.into(),
            values: values.map(|v| v.iter().map(|s| s.to_string()).collect()),
            list,
        })
    }

    #[test]
    fn groups_nest_quote_and_list() {
        let got = parse(
            r#"(a__exact.1,"b.c"__greater."15.5",and(d__isnull,or(e__in.(x,"y,z"))),f__less.33.5)"#,
            50,
        )
        .unwrap();
        assert_eq!(
            got,
            Node::Any(vec![
                leaf("a", "exact", Some(&["1"]), false),
                leaf("b.c", "greater", Some(&["15.5"]), false),
                Node::All(vec![
                    leaf("d", "isnull", None, false),
                    Node::Any(vec![leaf("e", "in", Some(&["x", "y,z"]), true)]),
                ]),
                leaf("f", "less", Some(&["33.5"]), false),
            ])
        );
        assert_eq!(
            parse(r#"("say ""hi"""__exact."")"#, 50).unwrap(),
            Node::Any(vec![leaf("say \"hi\"", "exact", Some(&[""]), false)])
        );
    }

    #[test]
    fn malformed_groups_are_400s_that_say_where() {
        let err = |t: &str| parse(t, 3).unwrap_err().to_string();
        assert!(
            err("(a__exact.1").contains("`)` expected"),
            "{}",
            err("(a__exact.1")
        );
        assert!(err("a__exact.1)").contains("`(` expected at character 1"));
        assert!(err("(a__exact.1))").contains("text after the closing parenthesis"));
        assert!(err("(a.1)").contains("`a` is not column__operator"));
        assert!(err("(\"a__exact.1)").contains("not closed"));
        assert!(err("(a__in.1,b__in.2,c__in.3,d__in.4)").contains("more than 3 conditions"));
        let deep = format!("({}a__isnull{})", "and(".repeat(9), ")".repeat(9));
        assert!(err(&deep).contains("deeper than 8 levels"));
        // Far deeper than any stack would take: refused at the limit, not by overflowing.
        let abyss = format!(
            "({}a__isnull{})",
            "or(".repeat(100_000),
            ")".repeat(100_000)
        );
        assert!(parse(&abyss, 3).is_err());
    }
}
