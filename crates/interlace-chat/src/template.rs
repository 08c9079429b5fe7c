//! Chat-template rendering, configured like transformers' `apply_chat_template` (jinja2 sandbox with `trim_blocks`, `lstrip_blocks`, loop controls,
//! `raise_exception`, `strftime_now` and transformers' `tojson`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use minijinja::value::{Kwargs, Rest, Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind, State};

use crate::error::{read_json, ChatError, Result};
use crate::message::ChatMessage;

/// Name under which the template is stored in the environment.
const TEMPLATE_NAME: &str = "chat_template";

/// Options of [`ChatTemplate::render_with`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RenderOptions {
    /// Append the assistant generation prompt (`<|im_start|>assistant\n`).
    pub add_generation_prompt: bool,
    /// Prefix images with `Picture k: ` (the template's `add_vision_id`, default false).
    pub add_vision_id: bool,
}

/// A compiled chat template with a transformers-compatible Jinja environment.
pub struct ChatTemplate {
    env: Environment<'static>,
    source_name: String,
    special_tokens: BTreeMap<String, String>,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate").field("source_name", &self.source_name).field("special_tokens", &self.special_tokens).finish_non_exhaustive()
    }
}

impl ChatTemplate {
    /// Compiles a template from source; `source_name` appears in error messages.
    pub fn from_source(source: impl Into<String>, source_name: impl Into<String>) -> Result<Self> {
        let source_name = source_name.into();
        let mut env = new_environment();
        env.add_template_owned(TEMPLATE_NAME, source.into())
            .map_err(|e| ChatError::Template { source_name: source_name.clone(), reason: format_jinja_error(&e) })?;
        Ok(Self { env, source_name, special_tokens: BTreeMap::new() })
    }

    /// Loads the template of a model directory: `chat_template.jinja`, else
    /// `chat_template.json` (`{"chat_template": "..."}`), else the `chat_template` field of
    /// `tokenizer_config.json` (a string, or a list of `{name, template}` where `default` is
    /// used). Special tokens of `tokenizer_config.json` (`bos_token`, `eos_token`, `pad_token`,
    /// `unk_token`) are passed to the template as transformers does.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let jinja = dir.join("chat_template.jinja");
        let json = dir.join("chat_template.json");
        let tok_cfg_path = dir.join("tokenizer_config.json");
        let tok_cfg = if tok_cfg_path.is_file() { Some(read_json(&tok_cfg_path)?) } else { None };
        let (source, name) = if jinja.is_file() {
            let s = std::fs::read_to_string(&jinja).map_err(|e| ChatError::InvalidFile { path: jinja.clone(), reason: e.to_string() })?;
            (s, jinja.display().to_string())
        } else if json.is_file() {
            let v = read_json(&json)?;
            let s = v.get("chat_template").and_then(|t| t.as_str()).ok_or_else(|| ChatError::InvalidConfig {
                path: json.clone(),
                field: "chat_template".into(),
                reason: "expected a string".into(),
            })?;
            (s.to_string(), format!("{}:chat_template", json.display()))
        } else if let Some(t) = tok_cfg.as_ref().and_then(|c| c.get("chat_template")) {
            let s = template_from_field(t).ok_or_else(|| ChatError::InvalidConfig {
                path: tok_cfg_path.clone(),
                field: "chat_template".into(),
                reason: "expected a string or a list of {name, template}".into(),
            })?;
            (s, format!("{}:chat_template", tok_cfg_path.display()))
        } else {
            return Err(ChatError::MissingFile {
                path: jinja,
                reason: "no chat template found (looked for chat_template.jinja, \
                         chat_template.json and a `chat_template` field in tokenizer_config.json)"
                    .into(),
            });
        };
        let mut tpl = Self::from_source(source, name)?;
        if let Some(cfg) = tok_cfg {
            for key in ["bos_token", "eos_token", "pad_token", "unk_token"] {
                let tok = match cfg.get(key) {
                    Some(serde_json::Value::String(s)) => Some(s.clone()),
                    Some(serde_json::Value::Object(o)) => o.get("content").and_then(|c| c.as_str()).map(str::to_string),
                    _ => None,
                };
                if let Some(tok) = tok {
                    tpl.special_tokens.insert(key.to_string(), tok);
                }
            }
        }
        Ok(tpl)
    }

    /// Where the template came from.
    pub fn source_name(&self) -> &str {
        &self.source_name
    }

    /// Special-token strings passed to the template (`bos_token`, `eos_token`, ...).
    pub fn special_tokens(&self) -> &BTreeMap<String, String> {
        &self.special_tokens
    }

    /// Renders messages (with `add_vision_id = false`).
    pub fn render(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<String> {
        self.render_with(messages, RenderOptions { add_generation_prompt, add_vision_id: false })
    }

    /// Renders messages with explicit options.
    pub fn render_with(&self, messages: &[ChatMessage], opts: RenderOptions) -> Result<String> {
        let msgs = serde_json::to_value(messages)
            .map_err(|e| ChatError::Template { source_name: self.source_name.clone(), reason: format!("cannot serialise messages: {e}") })?;
        self.render_json(&msgs, opts)
    }

    /// Renders messages given as raw JSON in the transformers format (for callers that need
    /// keys this crate's message types do not model, e.g. tool calls).
    pub fn render_json(&self, messages: &serde_json::Value, opts: RenderOptions) -> Result<String> {
        let err = |e: Error| ChatError::Template { source_name: self.source_name.clone(), reason: format_jinja_error(&e) };
        let mut ctx: BTreeMap<String, Value> = self.special_tokens.iter().map(|(k, v)| (k.clone(), Value::from(v.clone()))).collect();
        ctx.insert("messages".into(), Value::from_serialize(messages));
        ctx.insert("add_generation_prompt".into(), Value::from(opts.add_generation_prompt));
        ctx.insert("add_vision_id".into(), Value::from(opts.add_vision_id));
        let tmpl = self.env.get_template(TEMPLATE_NAME).map_err(err)?;
        tmpl.render(Value::from_iter(ctx)).map_err(err)
    }
}

fn template_from_field(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Array(items) => {
            let named = |name: &str| {
                items.iter().find_map(|it| (it.get("name")?.as_str()? == name).then(|| it.get("template")?.as_str().map(str::to_string)).flatten())
            };
            named("default").or_else(|| items.first().and_then(|it| it.get("template")?.as_str().map(str::to_string)))
        }
        _ => None,
    }
}

fn format_jinja_error(e: &Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        let _ = write!(s, ": {inner}");
        src = inner.source();
    }
    s
}

/// A minijinja environment set up like transformers' chat-template sandbox.
pub fn new_environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_keep_trailing_newline(false);
    env.add_function("raise_exception", |msg: String| -> std::result::Result<Value, Error> { Err(Error::new(ErrorKind::InvalidOperation, msg)) });
    env.add_function("strftime_now", |fmt: String| -> String { strftime_utc(&fmt) });
    env.add_filter("tojson", tojson_filter);
    env.set_unknown_method_callback(python_method);
    env
}

/// transformers' `tojson`: `json.dumps(x, ensure_ascii=False, indent=indent,
/// separators=separators, sort_keys=sort_keys)` — no HTML escaping, Python separators.
/// Note: without minijinja's `preserve_order` feature, map keys come out sorted.
fn tojson_filter(value: Value, _args: Rest<Value>, kwargs: Kwargs) -> std::result::Result<Value, Error> {
    let indent: Option<Value> = kwargs.get("indent")?;
    let sort_keys: Option<bool> = kwargs.get("sort_keys")?;
    let _ensure_ascii: Option<bool> = kwargs.get("ensure_ascii")?;
    let separators: Option<Value> = kwargs.get("separators")?;
    let indent = match indent {
        Some(v) if v.is_none() || v.is_undefined() => None,
        Some(v) => {
            if let Some(n) = v.as_i64() {
                Some(" ".repeat(n.max(0) as usize))
            } else {
                v.as_str().map(str::to_string)
            }
        }
        None => None,
    };
    let (item_sep, key_sep) = match separators {
        Some(v) if v.len() == Some(2) => {
            let a = v.get_item(&Value::from(0))?;
            let b = v.get_item(&Value::from(1))?;
            (a.to_string(), b.to_string())
        }
        _ => {
            if indent.is_some() {
                (",".to_string(), ": ".to_string())
            } else {
                (", ".to_string(), ": ".to_string())
            }
        }
    };
    let fmt = JsonFmt { indent, item_sep, key_sep, sort_keys: sort_keys.unwrap_or(false) };
    let mut out = String::new();
    fmt.write(&value, 0, &mut out)?;
    Ok(Value::from_safe_string(out))
}

struct JsonFmt {
    indent: Option<String>,
    item_sep: String,
    key_sep: String,
    sort_keys: bool,
}

impl JsonFmt {
    fn newline(&self, level: usize, out: &mut String) {
        if let Some(ind) = &self.indent {
            out.push('\n');
            for _ in 0..level {
                out.push_str(ind);
            }
        }
    }

    fn write(&self, v: &Value, level: usize, out: &mut String) -> std::result::Result<(), Error> {
        match v.kind() {
            ValueKind::Undefined | ValueKind::None => out.push_str("null"),
            ValueKind::Bool => out.push_str(if v.is_true() { "true" } else { "false" }),
            ValueKind::Number => {
                if v.is_integer() {
                    out.push_str(&v.to_string());
                } else {
                    let f = f64::try_from(v.clone()).unwrap_or(f64::NAN);
                    out.push_str(&python_float_repr(f));
                }
            }
            ValueKind::String => json_escape(v.as_str().unwrap_or_default(), out),
            ValueKind::Bytes => json_escape(&String::from_utf8_lossy(v.as_bytes().unwrap_or_default()), out),
            ValueKind::Map => {
                let mut keys: Vec<Value> = v.try_iter()?.collect();
                if self.sort_keys {
                    keys.sort_by_key(|a| a.to_string());
                }
                if keys.is_empty() {
                    out.push_str("{}");
                    return Ok(());
                }
                out.push('{');
                for (i, k) in keys.iter().enumerate() {
                    if i > 0 {
                        out.push_str(&self.item_sep);
                    }
                    self.newline(level + 1, out);
                    match k.kind() {
                        ValueKind::String => json_escape(k.as_str().unwrap_or_default(), out),
                        ValueKind::None => out.push_str("\"null\""),
                        ValueKind::Bool => out.push_str(if k.is_true() { "\"true\"" } else { "\"false\"" }),
                        _ => json_escape(&k.to_string(), out),
                    }
                    out.push_str(&self.key_sep);
                    self.write(&v.get_item(k)?, level + 1, out)?;
                }
                self.newline(level, out);
                out.push('}');
            }
            ValueKind::Seq | ValueKind::Iterable => {
                let items: Vec<Value> = v.try_iter()?.collect();
                if items.is_empty() {
                    out.push_str("[]");
                    return Ok(());
                }
                out.push('[');
                for (i, it) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(&self.item_sep);
                    }
                    self.newline(level + 1, out);
                    self.write(it, level + 1, out)?;
                }
                self.newline(level, out);
                out.push(']');
            }
            _ => json_escape(&v.to_string(), out),
        }
        Ok(())
    }
}

/// Python `json` string escaping with `ensure_ascii=False`.
fn json_escape(s: &str, out: &mut String) {
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Python `repr(float)` (as used by `json.dumps`): shortest round-trip digits, scientific
/// notation when the decimal exponent is < −4 or ≥ 16.
fn python_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    let sci = format!("{:e}", f.abs());
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mant.chars().filter(|c| *c != '.').collect();
    let sign = if f.is_sign_negative() { "-" } else { "" };
    let n = digits.len() as i32;
    if !(-4..16).contains(&exp) {
        let m = if n > 1 { format!("{}.{}", &digits[..1], &digits[1..]) } else { digits.clone() };
        let es = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{m}e{es}{:02}", exp.abs());
    }
    if exp >= 0 {
        if n - 1 <= exp {
            format!("{sign}{digits}{}.0", "0".repeat((exp - (n - 1)) as usize))
        } else {
            let k = (exp + 1) as usize;
            format!("{sign}{}.{}", &digits[..k], &digits[k..])
        }
    } else {
        format!("{sign}0.{}{digits}", "0".repeat((-exp - 1) as usize))
    }
}

/// A subset of Python `str`/`dict` methods templates commonly call (jinja2 exposes them,
/// minijinja does not).
fn python_method(_state: &State, value: &Value, method: &str, args: &[Value]) -> std::result::Result<Value, Error> {
    let unknown = || Error::new(ErrorKind::UnknownMethod, format!("unknown method {method}"));
    let arg_str = |i: usize| -> Option<String> { args.get(i).filter(|v| !v.is_none() && !v.is_undefined()).and_then(|v| v.as_str().map(str::to_string)) };
    match value.kind() {
        ValueKind::String => {
            let s = value.as_str().unwrap_or_default();
            let strip_set = |i: usize| -> Option<Vec<char>> { arg_str(i).map(|c| c.chars().collect()) };
            let prefixes = |i: usize| -> Vec<String> {
                match args.get(i) {
                    Some(v) if v.kind() == ValueKind::Seq => {
                        v.try_iter().map(|it| it.filter_map(|x| x.as_str().map(str::to_string)).collect()).unwrap_or_default()
                    }
                    Some(v) => v.as_str().map(|x| vec![x.to_string()]).unwrap_or_default(),
                    None => vec![],
                }
            };
            Ok(match method {
                "startswith" => Value::from(prefixes(0).iter().any(|p| s.starts_with(p.as_str()))),
                "endswith" => Value::from(prefixes(0).iter().any(|p| s.ends_with(p.as_str()))),
                "strip" => Value::from(match strip_set(0) {
                    Some(cs) => s.trim_matches(|c| cs.contains(&c)),
                    None => s.trim(),
                }),
                "lstrip" => Value::from(match strip_set(0) {
                    Some(cs) => s.trim_start_matches(|c| cs.contains(&c)),
                    None => s.trim_start(),
                }),
                "rstrip" => Value::from(match strip_set(0) {
                    Some(cs) => s.trim_end_matches(|c| cs.contains(&c)),
                    None => s.trim_end(),
                }),
                "upper" => Value::from(s.to_uppercase()),
                "lower" => Value::from(s.to_lowercase()),
                "split" | "rsplit" => {
                    let maxsplit = args.get(1).and_then(|v| v.as_i64()).unwrap_or(-1);
                    let parts: Vec<Value> = match arg_str(0) {
                        None => s.split_whitespace().map(Value::from).collect(),
                        Some(sep) if sep.is_empty() => return Err(Error::new(ErrorKind::InvalidOperation, "empty separator")),
                        Some(sep) => {
                            if maxsplit < 0 {
                                s.split(sep.as_str()).map(Value::from).collect()
                            } else if method == "split" {
                                s.splitn(maxsplit as usize + 1, sep.as_str()).map(Value::from).collect()
                            } else {
                                let mut v: Vec<Value> = s.rsplitn(maxsplit as usize + 1, sep.as_str()).map(Value::from).collect();
                                v.reverse();
                                v
                            }
                        }
                    };
                    Value::from(parts)
                }
                "replace" => {
                    let (Some(old), Some(new)) = (arg_str(0), arg_str(1)) else {
                        return Err(unknown());
                    };
                    match args.get(2).and_then(|v| v.as_i64()) {
                        Some(n) if n >= 0 => Value::from(s.replacen(old.as_str(), &new, n as usize)),
                        _ => Value::from(s.replace(old.as_str(), &new)),
                    }
                }
                "find" => Value::from(arg_str(0).and_then(|sub| s.find(sub.as_str())).map(|b| s[..b].chars().count() as i64).unwrap_or(-1)),
                "count" => Value::from(arg_str(0).map(|sub| s.matches(sub.as_str()).count()).unwrap_or(0)),
                "title" => {
                    let mut out = String::with_capacity(s.len());
                    let mut prev_alpha = false;
                    for c in s.chars() {
                        if c.is_alphabetic() {
                            if prev_alpha {
                                out.extend(c.to_lowercase());
                            } else {
                                out.extend(c.to_uppercase());
                            }
                            prev_alpha = true;
                        } else {
                            out.push(c);
                            prev_alpha = false;
                        }
                    }
                    Value::from(out)
                }
                "capitalize" => {
                    let mut cs = s.chars();
                    Value::from(match cs.next() {
                        Some(f) => f.to_uppercase().chain(cs.flat_map(|c| c.to_lowercase())).collect(),
                        None => String::new(),
                    })
                }
                "isdigit" => Value::from(!s.is_empty() && s.chars().all(|c| c.is_ascii_digit())),
                "isspace" => Value::from(!s.is_empty() && s.chars().all(char::is_whitespace)),
                "join" => {
                    let items = args.first().ok_or_else(unknown)?;
                    let parts: Vec<String> = items.try_iter()?.map(|v| v.to_string()).collect();
                    Value::from(parts.join(s))
                }
                _ => return Err(unknown()),
            })
        }
        ValueKind::Map => match method {
            "items" => {
                let keys: Vec<Value> = value.try_iter()?.collect();
                let mut out = Vec::with_capacity(keys.len());
                for k in keys {
                    let v = value.get_item(&k)?;
                    out.push(Value::from(vec![k, v]));
                }
                Ok(Value::from(out))
            }
            "keys" => Ok(Value::from(value.try_iter()?.collect::<Vec<_>>())),
            "values" => {
                let keys: Vec<Value> = value.try_iter()?.collect();
                let vals = keys.iter().map(|k| value.get_item(k)).collect::<std::result::Result<Vec<_>, _>>()?;
                Ok(Value::from(vals))
            }
            "get" => {
                let key = args.first().ok_or_else(unknown)?;
                let v = value.get_item(key)?;
                Ok(if v.is_undefined() { args.get(1).cloned().unwrap_or(Value::from(())) } else { v })
            }
            _ => Err(unknown()),
        },
        _ => Err(unknown()),
    }
}

/// `strftime` for the current time (UTC; transformers uses local time, which is UTC on
/// typical servers). Supports `%Y %y %m %d %e %H %I %M %S %p %B %b %A %a %j %%`.
fn strftime_utc(fmt: &str) -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    format_time(secs, fmt)
}

fn format_time(secs: i64, fmt: &str) -> String {
    const MONTHS: [&str; 12] = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];
    const DAYS: [&str; 7] = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    let (hh, mm, ss) = (tod / 3600, (tod % 3600) / 60, tod % 60);
    // Civil-from-days (H. Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy_mar = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy_mar + 2) / 153;
    let d = doy_mar - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let cum = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let yday = cum[(m - 1) as usize] + d + i64::from(leap && m > 2);
    let wday = (days + 3).rem_euclid(7); // 1970-01-01 was a Thursday (index 3 from Monday).
    let mut out = String::new();
    let mut it = fmt.chars();
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('Y') => {
                let _ = write!(out, "{y}");
            }
            Some('y') => {
                let _ = write!(out, "{:02}", y.rem_euclid(100));
            }
            Some('m') => {
                let _ = write!(out, "{m:02}");
            }
            Some('d') => {
                let _ = write!(out, "{d:02}");
            }
            Some('e') => {
                let _ = write!(out, "{d:2}");
            }
            Some('H') => {
                let _ = write!(out, "{hh:02}");
            }
            Some('I') => {
                let h12 = if hh % 12 == 0 { 12 } else { hh % 12 };
                let _ = write!(out, "{h12:02}");
            }
            Some('M') => {
                let _ = write!(out, "{mm:02}");
            }
            Some('S') => {
                let _ = write!(out, "{ss:02}");
            }
            Some('p') => out.push_str(if hh < 12 { "AM" } else { "PM" }),
            Some('B') => out.push_str(MONTHS[(m - 1) as usize]),
            Some('b') => out.push_str(&MONTHS[(m - 1) as usize][..3]),
            Some('A') => out.push_str(DAYS[wday as usize]),
            Some('a') => out.push_str(&DAYS[wday as usize][..3]),
            Some('j') => {
                let _ = write!(out, "{yday:03}");
            }
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{ContentPart, ImageSource};
    use image::DynamicImage;

    /// The Qwen3-VL Instruct template (third-party verbatim copy; the parity tests render the
    /// real file from the fixtures).
    const QWEN3_VL_TEMPLATE: &str = r##"{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0].role == 'system' %}
        {%- if messages[0].content is string %}
            {{- messages[0].content }}
        {%- else %}
            {%- for content in messages[0].content %}
                {%- if 'text' in content %}
                    {{- content.text }}
                {%- endif %}
            {%- endfor %}
        {%- endif %}
        {{- '\n\n' }}
    {%- endif %}
    {{- "# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0].role == 'system' %}
        {{- '<|im_start|>system\n' }}
        {%- if messages[0].content is string %}
            {{- messages[0].content }}
        {%- else %}
            {%- for content in messages[0].content %}
                {%- if 'text' in content %}
                    {{- content.text }}
                {%- endif %}
            {%- endfor %}
        {%- endif %}
        {{- '<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- set image_count = namespace(value=0) %}
{%- set video_count = namespace(value=0) %}
{%- for message in messages %}
    {%- if message.role == "user" %}
        {{- '<|im_start|>' + message.role + '\n' }}
        {%- if message.content is string %}
            {{- message.content }}
        {%- else %}
            {%- for content in message.content %}
                {%- if content.type == 'image' or 'image' in content or 'image_url' in content %}
                    {%- set image_count.value = image_count.value + 1 %}
                    {%- if add_vision_id %}Picture {{ image_count.value }}: {% endif -%}
                    <|vision_start|><|image_pad|><|vision_end|>
                {%- elif content.type == 'video' or 'video' in content %}
                    {%- set video_count.value = video_count.value + 1 %}
                    {%- if add_vision_id %}Video {{ video_count.value }}: {% endif -%}
                    <|vision_start|><|video_pad|><|vision_end|>
                {%- elif 'text' in content %}
                    {{- content.text }}
                {%- endif %}
            {%- endfor %}
        {%- endif %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role + '\n' }}
        {%- if message.content is string %}
            {{- message.content }}
        {%- else %}
            {%- for content_item in message.content %}
                {%- if 'text' in content_item %}
                    {{- content_item.text }}
                {%- endif %}
            {%- endfor %}
        {%- endif %}
        {{- '<|im_end|>\n' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
"##;

    fn tpl() -> ChatTemplate {
        ChatTemplate::from_source(QWEN3_VL_TEMPLATE, "test").unwrap()
    }

    #[test]
    fn renders_spec_example() {
        let msgs = vec![ChatMessage::user(vec![ContentPart::image_path("a.png"), ContentPart::text("Describe this image.")])];
        assert_eq!(
            tpl().render(&msgs, true).unwrap(),
            "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Describe this image.<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn renders_system_assistant_and_vision_ids() {
        let msgs = vec![
            ChatMessage::system("Be brief."),
            ChatMessage::user(vec![ContentPart::image(DynamicImage::new_rgb8(2, 2)), ContentPart::image_path("b.png"), ContentPart::text("Compare.")]),
            ChatMessage::assistant("Same."),
        ];
        let out = tpl().render_with(&msgs, RenderOptions { add_generation_prompt: false, add_vision_id: true }).unwrap();
        assert_eq!(
            out,
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nPicture 1: <|vision_start|><|image_pad|><|vision_end|>Picture 2: <|vision_start|><|image_pad|><|vision_end|>Compare.<|im_end|>\n<|im_start|>assistant\nSame.<|im_end|>\n"
        );
    }

    #[test]
    fn message_json_round_trip() {
        let v = serde_json::json!([
            {"role": "system", "content": "S"},
            {"role": "user", "content": [{"type": "image", "image": "images/x.png"}, {"type": "text", "text": "hi"}]}
        ]);
        let msgs: Vec<ChatMessage> = serde_json::from_value(v).unwrap();
        assert_eq!(msgs.len(), 2);
        assert!(matches!(&msgs[1].content[0], ContentPart::Image(ImageSource::Path(p)) if p == Path::new("images/x.png")));
        let back = serde_json::to_value(&msgs[1]).unwrap();
        assert_eq!(back, serde_json::json!({"role": "user", "content": [{"type": "image", "image": "images/x.png"}, {"type": "text", "text": "hi"}]}));
        let mem = serde_json::to_value(ContentPart::image(DynamicImage::new_rgb8(1, 1))).unwrap();
        assert_eq!(mem, serde_json::json!({"type": "image"}));
        assert!(serde_json::from_value::<ChatMessage>(serde_json::json!({"role": "tool", "content": "x"})).is_err());
    }

    #[test]
    fn environment_helpers() {
        let env = new_environment();
        let r = |src: &str, ctx: Value| env.render_str(src, ctx).unwrap();
        assert_eq!(
            r("{{ x | tojson }}", minijinja::context! { x => serde_json::json!({"a": [1, 2.5, "é<"], "b": null}) }),
            r#"{"a": [1, 2.5, "é<"], "b": null}"#
        );
        assert_eq!(r("{{ x | tojson(indent=2) }}", minijinja::context! { x => serde_json::json!({"a": [1]}) }), "{\n  \"a\": [\n    1\n  ]\n}");
        assert_eq!(r("{{ 'a,b,c'.split(',') | join('|') }}", Value::UNDEFINED), "a|b|c");
        assert_eq!(r("{{ '  x '.strip() }}{{ 'xyx'.rstrip('x') }}", Value::UNDEFINED), "xxy");
        assert_eq!(r("{{ 'abc'.startswith('ab') }}", Value::UNDEFINED), "True");
        assert_eq!(r("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}", minijinja::context! { d => serde_json::json!({"a": 1}) }), "a=1;");
        assert_eq!(r("{% for i in range(5) %}{% if i == 3 %}{% break %}{% endif %}{{ i }}{% endfor %}", Value::UNDEFINED), "012");
        let e = env.render_str("{{ raise_exception('bad role') }}", Value::UNDEFINED).unwrap_err();
        assert!(e.to_string().contains("bad role"));
        let year = r("{{ strftime_now('%Y') }}", Value::UNDEFINED);
        assert_eq!(year.len(), 4);
    }

    #[test]
    fn float_repr_and_dates() {
        assert_eq!(python_float_repr(1.0), "1.0");
        assert_eq!(python_float_repr(0.1), "0.1");
        assert_eq!(python_float_repr(1e16), "1e+16");
        assert_eq!(python_float_repr(1.5e-5), "1.5e-05");
        assert_eq!(python_float_repr(0.0001), "0.0001");
        assert_eq!(python_float_repr(-123.25), "-123.25");
        assert_eq!(python_float_repr(1e15), "1000000000000000.0");
        // 2024-02-29 13:05:09 UTC = 1709211909
        assert_eq!(format_time(1_709_211_909, "%Y-%m-%d %H:%M:%S %a %b %j %I%p"), "2024-02-29 13:05:09 Thu Feb 060 01PM");
        assert_eq!(format_time(0, "%d %B %Y %A"), "01 January 1970 Thursday");
    }

    #[test]
    fn template_errors_are_typed() {
        let e = ChatTemplate::from_source("{% if %}", "x.jinja").unwrap_err();
        assert!(matches!(e, ChatError::Template { .. }));
        assert!(e.to_string().contains("x.jinja"));
        let dir = std::env::temp_dir().join(format!("interlace-tpl-missing-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let e = ChatTemplate::from_dir(&dir).unwrap_err();
        assert!(matches!(e, ChatError::MissingFile { .. }));
        assert!(e.to_string().contains("chat_template.jinja"));
        std::fs::write(
            dir.join("tokenizer_config.json"),
            r#"{"chat_template": [{"name": "default", "template": "T{{ eos_token }}"}], "eos_token": {"content": "<e>"}}"#,
        )
        .unwrap();
        let t = ChatTemplate::from_dir(&dir).unwrap();
        assert_eq!(t.render(&[], false).unwrap(), "T<e>");
        std::fs::remove_dir_all(&dir).ok();
    }
}
