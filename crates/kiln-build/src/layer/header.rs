//! Tar headers written byte by byte, so nothing a tar library decides (timestamps, user names,
//! GNU extensions) can leak into a layer and change its digest.

/// Size of every tar block.
pub(crate) const BLOCK: usize = 512;

/// The tar type flag of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TypeFlag {
    File,
    Hardlink,
    Symlink,
    Directory,
    Pax,
}

impl TypeFlag {
    fn byte(self) -> u8 {
        match self {
            TypeFlag::File => b'0',
            TypeFlag::Hardlink => b'1',
            TypeFlag::Symlink => b'2',
            TypeFlag::Directory => b'5',
            TypeFlag::Pax => b'x',
        }
    }
}

/// What one entry's header says; `name` already carries the trailing `/` of a directory.
pub(crate) struct HeaderFields<'a> {
    pub name: &'a str,
    pub link: &'a str,
    pub flag: TypeFlag,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub size: u64,
    pub mtime: u64,
}

/// Largest value of an 8-byte octal field (7 digits) and of a 12-byte one (11 digits).
const MAX_OCTAL_8: u64 = 0o7_777_777;
const MAX_OCTAL_12: u64 = 0o77_777_777_777;

/// The bytes of one entry's header: a PAX extended header first when the name, link, size or
/// ids do not fit ustar. The PAX records never carry times, so the only time in a layer is the
/// ustar `mtime`, which the caller pins to `SOURCE_DATE_EPOCH`.
pub(crate) fn encode(fields: &HeaderFields<'_>) -> Vec<u8> {
    let mut records: Vec<(&str, String)> = Vec::new();
    let split = split_name(fields.name);
    if split.is_none() {
        records.push(("path", fields.name.to_string()));
    }
    if fields.link.len() > 100 {
        records.push(("linkpath", fields.link.to_string()));
    }
    if fields.size > MAX_OCTAL_12 {
        records.push(("size", fields.size.to_string()));
    }
    if fields.uid > MAX_OCTAL_8 {
        records.push(("uid", fields.uid.to_string()));
    }
    if fields.gid > MAX_OCTAL_8 {
        records.push(("gid", fields.gid.to_string()));
    }
    // Records are pushed in a fixed order above, so the same entry always gives the same bytes.
    let mut out = Vec::with_capacity(BLOCK * 3);
    if !records.is_empty() {
        let body = pax_body(&records);
        let pax = HeaderFields {
            name: "././@PaxHeader",
            link: "",
            flag: TypeFlag::Pax,
            mode: 0o644,
            uid: 0,
            gid: 0,
            size: body.len() as u64,
            mtime: fields.mtime,
        };
        out.extend_from_slice(&ustar(&pax, ("", "././@PaxHeader")));
        out.extend_from_slice(&body);
        out.resize(out.len().next_multiple_of(BLOCK), 0);
    }
    let (prefix, name) = split.unwrap_or(("", truncate(fields.name, 100)));
    let ustar_fields = HeaderFields {
        link: truncate(fields.link, 100),
        size: fields.size.min(MAX_OCTAL_12),
        uid: fields.uid.min(MAX_OCTAL_8),
        gid: fields.gid.min(MAX_OCTAL_8),
        ..*fields
    };
    out.extend_from_slice(&ustar(&ustar_fields, (prefix, name)));
    out
}

/// Two zero blocks end an archive.
pub(crate) fn trailer() -> [u8; BLOCK * 2] {
    [0; BLOCK * 2]
}

/// Zero bytes that pad `len` bytes of data up to a whole block.
pub(crate) fn padding(len: u64) -> usize {
    let rest = (len % BLOCK as u64) as usize;
    if rest == 0 { 0 } else { BLOCK - rest }
}

fn ustar(fields: &HeaderFields<'_>, (prefix, name): (&str, &str)) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    put(&mut h[0..100], name.as_bytes());
    octal(&mut h[100..108], u64::from(fields.mode & 0o7777));
    octal(&mut h[108..116], fields.uid);
    octal(&mut h[116..124], fields.gid);
    octal(&mut h[124..136], fields.size);
    octal(&mut h[136..148], fields.mtime.min(MAX_OCTAL_12));
    h[156] = fields.flag.byte();
    put(&mut h[157..257], fields.link.as_bytes());
    put(&mut h[257..263], b"ustar\0");
    put(&mut h[263..265], b"00");
    // uname and gname stay empty: ownership is numeric only, as the image's own passwd decides names.
    octal(&mut h[329..337], 0);
    octal(&mut h[337..345], 0);
    put(&mut h[345..500], prefix.as_bytes());
    h[148..156].fill(b' ');
    let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
    let digits = format!("{sum:06o}\0 ");
    put(&mut h[148..156], digits.as_bytes());
    h
}

/// ustar keeps up to 155 bytes of directories in `prefix` and up to 100 in `name`.
fn split_name(path: &str) -> Option<(&str, &str)> {
    if path.len() <= 100 {
        return Some(("", path));
    }
    // Split at the last `/` (ignoring a directory's trailing one) that leaves both parts in range.
    let search = path.strip_suffix('/').unwrap_or(path);
    search
        .rmatch_indices('/')
        .map(|(i, _)| i)
        .find(|&i| i <= 155 && path.len() - i - 1 <= 100 && i > 0)
        .map(|i| (&path[..i], &path[i + 1..]))
}

fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// `"<len> <key>=<value>\n"` records, where `len` counts the whole record including itself.
fn pax_body(records: &[(&str, String)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (key, value) in records {
        let rest = key.len() + value.len() + 3;
        let mut len = rest + rest.to_string().len();
        if len.to_string().len() + rest != len {
            len = rest + len.to_string().len();
        }
        body.extend_from_slice(format!("{len} {key}={value}\n").as_bytes());
    }
    body
}

fn put(field: &mut [u8], bytes: &[u8]) {
    let n = bytes.len().min(field.len());
    field[..n].copy_from_slice(&bytes[..n]);
}

/// Zero-padded octal digits filling all but the last byte, which stays NUL.
fn octal(field: &mut [u8], value: u64) {
    let width = field.len() - 1;
    let text = format!("{value:0width$o}");
    put(field, text.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(name: &str) -> HeaderFields<'_> {
        HeaderFields { name, link: "", flag: TypeFlag::File, mode: 0o644, uid: 0, gid: 0, size: 5, mtime: 42 }
    }

    #[test]
    fn short_names_need_no_pax() {
        let bytes = encode(&fields("usr/bin/x"));
        assert_eq!(bytes.len(), BLOCK);
        assert_eq!(&bytes[0..9], b"usr/bin/x");
        assert_eq!(&bytes[136..148], b"00000000052\0");
        assert_eq!(&bytes[257..265], b"ustar\x0000");
    }

    #[test]
    fn long_names_use_prefix_then_pax() {
        let name = format!("{}/{}", "d".repeat(120), "f".repeat(90));
        let bytes = encode(&fields(&name));
        assert_eq!(bytes.len(), BLOCK, "fits prefix + name");
        let name = "x".repeat(300);
        let bytes = encode(&fields(&name));
        assert_eq!(bytes[156], b'x');
        let text = String::from_utf8_lossy(&bytes[BLOCK..BLOCK * 2]);
        assert!(text.starts_with(&format!("{} path={name}\n", 300 + 10)), "{text}");
        assert!(!text.contains("time"));
    }

    #[test]
    fn pax_length_counts_itself() {
        for n in [1usize, 85, 86, 87, 95, 96, 97, 990, 995, 996, 997] {
            let body = pax_body(&[("path", "a".repeat(n))]);
            let (len, _) = std::str::from_utf8(&body).unwrap_or_default().split_once(' ').unwrap_or_default();
            assert_eq!(len.parse::<usize>().ok(), Some(body.len()), "{n}");
        }
    }

    #[test]
    fn padding_rounds_to_blocks() {
        assert_eq!(padding(0), 0);
        assert_eq!(padding(1), 511);
        assert_eq!(padding(512), 0);
    }
}
