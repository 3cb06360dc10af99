//! Server-Sent Events as Kiln sends them (task progress and logs): bytes in, whole events
//! out, however the stream was cut into chunks.

use serde_json::Value;

/// One event: its name and its data, parsed as JSON (`Null` if the data is not JSON).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub name: String,
    pub data: Value,
}

/// Collects lines across chunks and yields each event once its blank line arrives.
#[derive(Default)]
pub struct Parser {
    buffer: String,
    name: String,
    data: String,
}

impl Parser {
    /// Feeds one chunk of the stream; returns the events it completed, in order.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<Event> {
        self.buffer.push_str(&String::from_utf8_lossy(chunk));
        let mut events = Vec::new();
        while let Some(end) = self.buffer.find('\n') {
            let line: String = self.buffer.drain(..=end).collect();
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if !self.name.is_empty() {
                    let data = serde_json::from_str(&self.data).unwrap_or(Value::Null);
                    events.push(Event { name: std::mem::take(&mut self.name), data });
                }
                self.name.clear();
                self.data.clear();
            } else if let Some(name) = line.strip_prefix("event:") {
                self.name = name.trim().to_string();
            } else if let Some(data) = line.strip_prefix("data:") {
                if !self.data.is_empty() {
                    self.data.push('\n');
                }
                self.data.push_str(data.strip_prefix(' ').unwrap_or(data));
            }
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_chunks_come_out_whole() {
        let mut parser = Parser::default();
        assert!(parser.push(b"event: log\ndata: {\"li").is_empty());
        let events = parser.push(b"ne\":\"a\"}\r\n\r\n: comment\n\nevent: end\ndata: 1\n\nevent: x\n");
        assert_eq!(
            events,
            vec![
                Event { name: "log".into(), data: serde_json::json!({"line": "a"}) },
                Event { name: "end".into(), data: serde_json::json!(1) },
            ]
        );
        assert_eq!(parser.push(b"data: not json\n\n"), vec![Event { name: "x".into(), data: Value::Null }]);
    }
}
