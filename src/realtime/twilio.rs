//! Twilio's side of a call: the Media Streams messages (as typed serde enums), request signatures
//! (`X-Twilio-Signature`), and caller numbers.

use std::collections::HashMap;

use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha1::Sha1;

use crate::inference::ApiKey;

/// A message Twilio sends on a media stream.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum Inbound {
    /// The socket is connected; `start` follows.
    Connected {
        /// Always "Call".
        #[serde(default)]
        protocol: String,
    },
    /// The stream's metadata.
    Start {
        /// The stream's metadata.
        start: StreamStart,
    },
    /// 20 ms of caller audio.
    Media {
        /// The audio.
        media: MediaPayload,
    },
    /// Audio sent before the named mark has finished playing.
    Mark {
        /// Which mark.
        mark: MarkName,
    },
    /// The caller pressed a key.
    Dtmf {
        /// Which key.
        dtmf: Dtmf,
    },
    /// The call ended (or the stream was stopped).
    Stop,
}

/// The `start` message's body.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamStart {
    /// The Twilio account the call belongs to; the REST API (transfers) is called as it.
    #[serde(default)]
    pub account_sid: String,
    /// Stream id; outbound messages name it.
    pub stream_sid: String,
    /// Twilio's call id: the session id.
    pub call_sid: String,
    /// `<Parameter>`s of the TwiML `<Stream>`: `caller` carries the caller's number.
    #[serde(default)]
    pub custom_parameters: HashMap<String, String>,
    /// Audio format; Twilio sends `audio/x-mulaw` at 8000 Hz, mono.
    pub media_format: MediaFormat,
}

/// Audio format of a stream.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaFormat {
    /// `audio/x-mulaw`.
    pub encoding: String,
    /// 8000.
    pub sample_rate: u32,
    /// 1.
    pub channels: u32,
}

/// Base64 audio.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct MediaPayload {
    /// μ-law bytes, base64.
    pub payload: String,
}

/// A mark's name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MarkName {
    /// As sent.
    pub name: String,
}

/// A key press.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Dtmf {
    /// `0`–`9`, `*`, `#`.
    pub digit: String,
}

/// A message to Twilio.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum Outbound {
    /// Audio to play: 8 kHz μ-law, base64.
    Media {
        #[serde(rename = "streamSid")]
        /// The stream.
        stream_sid: String,
        /// The audio.
        media: OutboundMedia,
    },
    /// Tells us (by echoing it) when the audio sent before it has played.
    Mark {
        #[serde(rename = "streamSid")]
        /// The stream.
        stream_sid: String,
        /// Its name.
        mark: MarkName,
    },
    /// Drops audio not yet played (barge-in).
    Clear {
        #[serde(rename = "streamSid")]
        /// The stream.
        stream_sid: String,
    },
}

/// Outbound audio.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutboundMedia {
    /// μ-law bytes, base64.
    pub payload: String,
}

/// A phone number in E.164 form (`+15551230001`): separators dropped, ten-digit North American numbers given
/// their `+1`. `None` for withheld or malformed numbers ("anonymous", "client:alice", letters).
pub fn normalize_caller(raw: &str) -> Option<String> {
    let raw = raw.trim();
    let plus = raw.starts_with('+');
    let mut digits = String::new();
    for c in raw.trim_start_matches('+').chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '(' | ')' | '.' => {}
            _ => return None,
        }
    }
    match digits.len() {
        10 if !plus => Some(format!("+1{digits}")),
        11 if !plus && digits.starts_with('1') => Some(format!("+{digits}")),
        8..=15 if plus => Some(format!("+{digits}")),
        _ => None,
    }
}

/// Checks `X-Twilio-Signature`: base64 of HMAC-SHA1, keyed by the auth token, over the full URL Twilio requested
/// followed by each POST parameter's name and value, sorted by name.
#[derive(Clone)]
pub struct SignatureCheck {
    token: ApiKey,
}

impl SignatureCheck {
    /// Checks signatures made with `token`.
    pub fn new(token: ApiKey) -> Self {
        Self { token }
    }

    /// The MAC over `url` and `params` sorted by name.
    fn mac(&self, url: &str, params: &[(String, String)]) -> Hmac<Sha1> {
        let mut sorted: Vec<&(String, String)> = params.iter().collect();
        sorted.sort();
        let mut mac = Hmac::<Sha1>::new_from_slice(self.token.0.as_bytes()).expect("HMAC takes keys of any length");
        mac.update(url.as_bytes());
        for (k, v) in sorted {
            mac.update(k.as_bytes());
            mac.update(v.as_bytes());
        }
        mac
    }

    /// The signature Twilio sends for `url` and `params`.
    pub fn sign(&self, url: &str, params: &[(String, String)]) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.mac(url, params).finalize().into_bytes())
    }

    /// Whether `signature` is right for `url` (query string included) and `params`, compared in constant time.
    /// Like Twilio's own validators, the URL is also tried with its scheme's default port made explicit, or with
    /// an explicit port left out: Twilio does not sign every request the same way.
    pub fn verify(&self, url: &str, params: &[(String, String)], signature: &str) -> bool {
        let Ok(given) = base64::engine::general_purpose::STANDARD.decode(signature.trim()) else {
            return false;
        };
        port_variants(url).iter().any(|url| self.mac(url, params).verify_slice(&given).is_ok())
    }
}

/// `url` as given, and with its port toggled: an explicit port removed, or the scheme's default port (443 for
/// https/wss, 80 for http/ws) added when there is none.
fn port_variants(url: &str) -> Vec<String> {
    let mut out = vec![url.to_string()];
    let Some((scheme, rest)) = url.split_once("://") else { return out };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    // The port follows the last ':' unless that ':' is inside an IPv6 literal ("[::1]").
    let port_at = authority.rfind(':').filter(|&i| !authority[i..].contains(']'));
    let toggled = match port_at {
        Some(i) => authority[..i].to_string(),
        None => match scheme {
            "https" | "wss" => format!("{authority}:443"),
            "http" | "ws" => format!("{authority}:80"),
            _ => return out,
        },
    };
    out.push(format!("{scheme}://{toggled}{tail}"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twilio_documented_signature_example() {
        // The example in Twilio's "Webhooks security" documentation.
        let check = SignatureCheck::new(ApiKey("12345".into()));
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let params: Vec<(String, String)> = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(check.sign(url, &params), "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
        assert!(check.verify(url, &params, "0/KCTR6DLpKmkAf8muzZqo1nDgQ="));
        assert!(!check.verify(url, &params[1..], "0/KCTR6DLpKmkAf8muzZqo1nDgQ="));
        assert!(!check.verify(url, &params, "not base64!"));
    }

    #[test]
    fn urls_are_also_checked_with_the_port_toggled_as_twilio_does() {
        assert_eq!(
            port_variants("https://example.com/incoming-call?office=hq"),
            ["https://example.com/incoming-call?office=hq", "https://example.com:443/incoming-call?office=hq"]
        );
        assert_eq!(port_variants("http://127.0.0.1:8080/x"), ["http://127.0.0.1:8080/x", "http://127.0.0.1/x"]);
        assert_eq!(
            port_variants("wss://[::1]/media-stream"),
            ["wss://[::1]/media-stream", "wss://[::1]:443/media-stream"]
        );
        assert_eq!(port_variants("https://host:8443?a=1"), ["https://host:8443?a=1", "https://host?a=1"]);
        let check = SignatureCheck::new(ApiKey("token".into()));
        let signed = check.sign("https://example.com:443/incoming-call?office=hq", &[]);
        assert!(check.verify("https://example.com/incoming-call?office=hq", &[], &signed));
        assert!(!check.verify("https://example.com/incoming-call?office=evil", &[], &signed));
    }

    #[test]
    fn caller_numbers_are_normalised_or_refused() {
        assert_eq!(normalize_caller("+1 (555) 123-0001").as_deref(), Some("+15551230001"));
        assert_eq!(normalize_caller("555.123.0001").as_deref(), Some("+15551230001"));
        assert_eq!(normalize_caller("15551230001").as_deref(), Some("+15551230001"));
        assert_eq!(normalize_caller("+447700900123").as_deref(), Some("+447700900123"));
        for bad in ["anonymous", "client:alice", "", "+1", "555-0001", "+1555'; DROP"] {
            assert_eq!(normalize_caller(bad), None, "{bad}");
        }
    }
}
