//! A guard pass over a pickle stream, run before candle's `pickle::Stack` builds objects from it.
//!
//! candle never runs pickle code: GLOBAL only records a name and REDUCE only records a call. But
//! it trusts the stream in ways a hostile file can abuse: BINUNICODE allocates the length it
//! claims before reading, LONG1 shifts by 8·n bits for any n, and BINGET clones whole objects,
//! so a few bytes can build an exponentially large or deeply nested tree. This pass replays the
//! same stack machine on sizes alone and refuses the stream before candle sees it when:
//! - an opcode is one candle does not know, or its argument runs past the end;
//! - a GLOBAL names anything but the few functions and classes a state dict uses;
//! - BINUNICODE claims more bytes than remain, or LONG1 more than 8;
//! - objects nest deeper than [`MAX_DEPTH`], or memo copies exceed [`MAX_COPIED`] bytes in all.

use crate::error::{Error, Result};

/// A state dict nests about six levels (dict → rebuild call → args → storage → tuple → item).
pub const MAX_DEPTH: u32 = 64;
/// Total bytes (estimated) that BINPUT and BINGET may copy over the whole stream.
pub const MAX_COPIED: u64 = 64 << 20;
/// Rough size of one candle `Object` node.
const NODE: u64 = 64;

/// The callables and classes a `torch.save(state_dict)` pickle names. Storage classes other
/// than the float ones are allowed here so the loader can say "wrong dtype" rather than
/// "unsafe pickle".
pub const ALLOWED_GLOBALS: &[&str] = &[
    "collections.OrderedDict",
    "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_parameter",
    "torch.FloatStorage",
    "torch.HalfStorage",
    "torch.BFloat16Storage",
    "torch.DoubleStorage",
    "torch.LongStorage",
    "torch.IntStorage",
    "torch.ShortStorage",
    "torch.CharStorage",
    "torch.ByteStorage",
    "torch.BoolStorage",
];

#[derive(Clone, Copy)]
enum Slot {
    Mark,
    Obj { bytes: u64, depth: u32 },
}

impl Slot {
    fn size(self) -> (u64, u32) {
        match self {
            Slot::Mark => (NODE, 1),
            Slot::Obj { bytes, depth } => (bytes, depth),
        }
    }
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    what: &'a str,
    stack: Vec<Slot>,
    memo: std::collections::HashMap<u32, Slot>,
    copied: u64,
}

impl<'a> Machine<'a> {
    fn fail(&self, message: String) -> Error {
        Error::checkpoint(self.what, format!("pickle refused at byte {}: {message}", self.pos))
    }

    fn take(&mut self, len: usize, op: &str) -> Result<&'a [u8]> {
        if len > self.data.len() - self.pos {
            return Err(self.fail(format!("{op} needs {len} bytes, only {} remain", self.data.len() - self.pos)));
        }
        let out = &self.data[self.pos..self.pos + len];
        self.pos += len;
        Ok(out)
    }

    fn line(&mut self, op: &str) -> Result<&'a [u8]> {
        let rest = &self.data[self.pos..];
        let Some(end) = rest.iter().position(|&b| b == b'\n') else {
            return Err(self.fail(format!("{op} has no terminating newline")));
        };
        self.pos += end + 1;
        Ok(rest[..end].strip_suffix(b"\r").unwrap_or(&rest[..end]))
    }

    fn u32(&mut self, op: &str) -> Result<u32> {
        let b = self.take(4, op)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn pop(&mut self, op: &str) -> Result<Slot> {
        self.stack.pop().ok_or_else(|| self.fail(format!("{op} on an empty stack")))
    }

    fn pop_to_mark(&mut self, op: &str) -> Result<Vec<Slot>> {
        let Some(at) = self.stack.iter().rposition(|s| matches!(s, Slot::Mark)) else {
            return Err(self.fail(format!("{op} without a MARK")));
        };
        let items = self.stack.split_off(at + 1);
        self.stack.pop();
        Ok(items)
    }

    /// Pushes a container holding `items`, refusing one nested too deep.
    fn push_container(&mut self, items: &[Slot]) -> Result<()> {
        let (bytes, depth) = items.iter().fold((NODE, 0), |(b, d), s| {
            let (sb, sd) = s.size();
            (b.saturating_add(sb), d.max(sd))
        });
        self.push(Slot::Obj { bytes, depth: depth + 1 })
    }

    fn push(&mut self, slot: Slot) -> Result<()> {
        if let Slot::Obj { depth, .. } = slot {
            if depth > MAX_DEPTH {
                return Err(self.fail(format!("objects nest {depth} deep, at most {MAX_DEPTH} expected")));
            }
        }
        self.stack.push(slot);
        Ok(())
    }

    /// Adds `items` to the container on top of the stack (APPEND, SETITEM and friends).
    fn extend_last(&mut self, items: &[Slot], op: &str) -> Result<()> {
        let last = self.pop(op)?;
        if matches!(last, Slot::Mark) {
            return Err(self.fail(format!("{op} onto a MARK")));
        }
        let mut all = vec![last];
        all.extend_from_slice(items);
        let (bytes, depth) = all.iter().fold((0u64, 0), |(b, d), s| {
            let (sb, sd) = s.size();
            (b.saturating_add(sb), d.max(sd))
        });
        let depth = depth.max(items.iter().map(|s| s.size().1 + 1).max().unwrap_or(0));
        self.push(Slot::Obj { bytes, depth })
    }

    fn copy(&mut self, slot: Slot) -> Result<Slot> {
        self.copied = self.copied.saturating_add(slot.size().0);
        if self.copied > MAX_COPIED {
            return Err(self.fail(format!("memo copies exceed {MAX_COPIED} bytes (a pickle bomb?)")));
        }
        Ok(slot)
    }

    fn get(&mut self, id: u32) -> Result<()> {
        let slot = *self.memo.get(&id).ok_or_else(|| self.fail(format!("BINGET of unset memo slot {id}")))?;
        let slot = self.copy(slot)?;
        self.push(slot)
    }

    fn put(&mut self, id: u32) -> Result<()> {
        let top = *self.stack.last().ok_or_else(|| self.fail("BINPUT on an empty stack".into()))?;
        let slot = self.copy(top)?;
        self.memo.insert(id, slot);
        Ok(())
    }

    fn leaf(&mut self, extra: u64) -> Result<()> {
        self.push(Slot::Obj { bytes: NODE + extra, depth: 1 })
    }

    /// Runs one opcode; returns true at STOP.
    fn step(&mut self) -> Result<bool> {
        let start = self.pos;
        let op = self.take(1, "an opcode")?[0];
        match op {
            0x80 => {
                self.take(1, "PROTO")?;
            }
            b'c' => {
                let module = String::from_utf8_lossy(self.line("GLOBAL")?).into_owned();
                let name = String::from_utf8_lossy(self.line("GLOBAL")?).into_owned();
                let global = format!("{module}.{name}");
                if !ALLOWED_GLOBALS.contains(&global.as_str()) {
                    return Err(Error::UnsafePickle { what: self.what.into(), global, offset: start });
                }
                self.leaf(global.len() as u64)?
            }
            b'K' | b'M' | b'J' | b'G' => {
                let len = match op {
                    b'K' => 1,
                    b'M' => 2,
                    b'J' => 4,
                    _ => 8,
                };
                self.take(len, "an integer or float")?;
                self.leaf(0)?
            }
            0x8a => {
                let n = self.take(1, "LONG1")?[0];
                if n > 8 {
                    return Err(self.fail(format!("LONG1 of {n} bytes, at most 8 supported")));
                }
                self.take(n as usize, "LONG1")?;
                self.leaf(0)?
            }
            b'X' => {
                let len = self.u32("BINUNICODE length")? as usize;
                self.take(len, "BINUNICODE")?;
                self.leaf(len as u64)?
            }
            b'N' | 0x88 | 0x89 | b')' | b'}' | b'd' | b']' => self.leaf(0)?,
            b'(' => self.stack.push(Slot::Mark),
            b't' => {
                let items = self.pop_to_mark("TUPLE")?;
                self.push_container(&items)?
            }
            0x85..=0x87 => {
                let n = (op - 0x84) as usize;
                let items = (0..n).map(|_| self.pop("TUPLE1/2/3")).collect::<Result<Vec<_>>>()?;
                self.push_container(&items)?
            }
            b'Q' => {
                let id = self.pop("BINPERSID")?;
                self.push_container(&[id])?
            }
            b'R' | b'b' | 0x81 => {
                let args = self.pop("REDUCE/BUILD/NEWOBJ")?;
                let callable = self.pop("REDUCE/BUILD/NEWOBJ")?;
                self.push_container(&[callable, args])?
            }
            b'a' => {
                let value = self.pop("APPEND")?;
                self.extend_last(&[value], "APPEND")?
            }
            b's' => {
                let value = self.pop("SETITEM")?;
                let key = self.pop("SETITEM")?;
                self.extend_last(&[key, value], "SETITEM")?
            }
            b'e' | b'u' => {
                let items = self.pop_to_mark("APPENDS/SETITEMS")?;
                self.extend_last(&items, "APPENDS/SETITEMS")?
            }
            b'h' => {
                let id = self.take(1, "BINGET")?[0] as u32;
                self.get(id)?
            }
            b'j' => {
                let id = self.u32("LONG_BINGET")?;
                self.get(id)?
            }
            b'q' => {
                let id = self.take(1, "BINPUT")?[0] as u32;
                self.put(id)?
            }
            b'r' => {
                let id = self.u32("LONG_BINPUT")?;
                self.put(id)?
            }
            b'.' => return Ok(true),
            other => {
                self.pos = start;
                return Err(
                    self.fail(format!("opcode 0x{other:02x} is not one a protocol-2 `torch.save` state dict uses"))
                );
            }
        }
        Ok(false)
    }
}

/// Checks a pickle stream; Ok means candle's `Stack` may read it safely.
pub fn check(data: &[u8], what: &str) -> Result<()> {
    let mut machine =
        Machine { data, pos: 0, what, stack: Vec::new(), memo: std::collections::HashMap::new(), copied: 0 };
    loop {
        if machine.pos == data.len() {
            return Err(machine.fail("the stream ends without STOP".into()));
        }
        if machine.step()? {
            return Ok(());
        }
    }
}
