//! Wheels, requirement files and index pages made here, through the Python side.

use std::io::Write;
use std::str::FromStr;

use super::index::*;
use super::install::*;
use super::metadata::parse_metadata;
use super::requirements::parse_requirements;
use super::resolve::specifiers_range;
use super::wheel_name::WheelName;
use super::*;

fn target() -> Target {
    Target::from_debian("3.11.2-1+b1", Some("2.36-9+deb12u10"), "x86_64").unwrap()
}

fn record_line(path: &str, data: &[u8]) -> String {
    use base64::Engine;
    use sha2::Digest;
    let hash = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(data));
    format!("{path},sha256={hash},{}\n", data.len())
}

/// A wheel with `files` and a RECORD listing them (`tamper` changes a file after hashing).
fn wheel(files: &[(&str, &[u8])], tamper: bool) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let mut record = String::new();
    for (path, data) in files {
        record.push_str(&record_line(path, data));
        writer.start_file(*path, options).unwrap();
        if tamper && path.ends_with(".py") {
            writer.write_all(b"import os; os.system('evil')\n").unwrap();
        } else {
            writer.write_all(data).unwrap();
        }
    }
    record.push_str("demo-1.0.dist-info/RECORD,,\n");
    writer.start_file("demo-1.0.dist-info/RECORD", options).unwrap();
    writer.write_all(record.as_bytes()).unwrap();
    writer.finish().unwrap().into_inner()
}

fn install(wheel: &[u8], limits: &Limits) -> Result<InstalledWheel, WheelError> {
    install_wheel(std::io::Cursor::new(wheel), &target(), limits, &crate::memory::MemoryBudget::unlimited())
}

/// A zip bomb: `files` deflated entries of 32 MiB of zeros each, streamed into the zip.
fn zip_bomb(files: usize) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated).large_file(false);
    for (path, data) in [("demo-1.0.dist-info/METADATA", METADATA), ("demo-1.0.dist-info/RECORD", b"")] {
        writer.start_file(path, options).unwrap();
        writer.write_all(data).unwrap();
    }
    for i in 0..files {
        writer.start_file(format!("demo/zeros{i}.bin"), options).unwrap();
        std::io::copy(&mut std::io::Read::take(std::io::repeat(0), 32 << 20), &mut writer).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

const METADATA: &[u8] = b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\nLicense: MIT\nRequires-Dist: six\n\n";

fn honest() -> Vec<(&'static str, &'static [u8])> {
    vec![
        ("demo/__init__.py", b"VALUE = 1\n"),
        ("demo-1.0.dist-info/METADATA", METADATA),
        ("demo-1.0.dist-info/WHEEL", b"Wheel-Version: 1.0\n"),
        ("demo-1.0.dist-info/entry_points.txt", b"[console_scripts]\ndemo = demo.cli:main\n"),
        ("demo-1.0.data/scripts/tool", b"#!python\nprint('x')\n"),
    ]
}

#[test]
fn wheels_install_into_site_packages_with_scripts_and_a_new_record() {
    let installed = install(&wheel(&honest(), false), &Limits::default()).unwrap();
    let paths: Vec<&str> = installed.entries.iter().map(|e| e.path.as_str()).collect();
    let site = "usr/local/lib/python3.11/dist-packages";
    assert!(paths.contains(&format!("{site}/demo/__init__.py").as_str()), "{paths:?}");
    assert!(paths.contains(&format!("{site}/demo-1.0.dist-info/INSTALLER").as_str()));
    assert!(paths.contains(&"usr/local/bin/demo") && paths.contains(&"usr/local/bin/tool"));
    let file = |path: &str| {
        installed
            .entries
            .iter()
            .find(|e| e.path == path)
            .and_then(|e| match &e.kind {
                kiln_archive::tree::EntryKind::File { data } => Some(String::from_utf8_lossy(data).into_owned()),
                _ => None,
            })
            .unwrap()
    };
    assert!(file("usr/local/bin/tool").starts_with("#!/usr/bin/python3\n"));
    assert!(file("usr/local/bin/demo").contains("from demo.cli import main"));
    let record = file(&format!("{site}/demo-1.0.dist-info/RECORD"));
    assert!(record.contains("../../../../../usr/local/bin/demo,sha256="), "{record}");
    assert_eq!(installed.scripts, ["demo"]);
}

#[test]
fn altered_escaping_and_oversized_wheels_are_refused() {
    let altered = install(&wheel(&honest(), true), &Limits::default()).unwrap_err();
    assert!(altered.to_string().contains("demo/__init__.py") && altered.to_string().contains("RECORD"), "{altered}");
    let mut files = honest();
    files.push(("../../etc/passwd", b"root::0:0::/:/bin/sh\n"));
    let escape = install(&wheel(&files, false), &Limits::default()).unwrap_err();
    assert!(escape.to_string().contains("../../etc/passwd"), "{escape}");
    let mut files = honest();
    files.push(("/etc/shadow", b"x"));
    assert!(matches!(install(&wheel(&files, false), &Limits::default()), Err(WheelError::Escape(_))));
    let big = vec![0u8; 4096];
    let mut files = honest();
    files.push(("demo/big.bin", &big));
    let bomb = install(&wheel(&files, false), &Limits { max_bytes: 1024, max_entries: 100 });
    assert!(matches!(bomb, Err(WheelError::TooBig { limit: 1024 })), "{bomb:?}");
    assert!(install(b"PK not really", &Limits::default()).is_err());
}

#[test]
fn wheel_tags_pick_what_runs_on_the_image() {
    let t = target();
    let rank = |name: &str| WheelName::parse(name).unwrap().rank(&t);
    let native = rank("pandas-2.2.3-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl").unwrap();
    let abi3 = rank("cryptography-43.0.0-cp39-abi3-manylinux_2_28_x86_64.whl").unwrap();
    let pure = rank("six-1.16.0-py2.py3-none-any.whl").unwrap();
    assert!(native < abi3 && abi3 < pure);
    assert!(rank("pandas-2.2.3-cp312-cp312-manylinux_2_17_x86_64.whl").is_none());
    assert!(rank("pandas-2.2.3-cp311-cp311-musllinux_1_1_x86_64.whl").is_none());
    assert!(rank("pandas-2.2.3-cp311-cp311-manylinux_2_39_x86_64.whl").is_none(), "newer glibc than the image");
    assert!(rank("pandas-2.2.3-cp311-cp311-manylinux_2_17_aarch64.whl").is_none());
    assert!(rank("pandas-2.2.3-cp311-cp311-win_amd64.whl").is_none());
}

#[test]
fn requirement_files_parse_as_pip_reads_them() {
    let text = "# comment\npandas==2.2.3  # pinned\nrequests[socks] >=2.31, <3 ; python_version >= \"3.8\"\n\
                psycopg2-binary \\\n    --hash=sha256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n--prefer-binary\n";
    let parsed = parse_requirements(text).unwrap();
    assert_eq!(parsed.len(), 3);
    assert_eq!(parsed[1].requirement.extras.len(), 1);
    let hashes: Vec<&str> = parsed[2].hashes.iter().map(|h| h.hex()).collect();
    assert_eq!(hashes, ["a".repeat(64)], "upper-case hex is lower-cased");
    assert_eq!(parsed[2].line, 4);
    let err = parse_requirements("six\n-r other.txt\n").unwrap_err().to_string();
    assert!(err.starts_with("requirements line 2: -r"), "{err}");
    let err = parse_requirements("pandas ===\n").unwrap_err().to_string();
    assert!(err.starts_with("requirements line 1:"), "{err}");
    let err = parse_requirements("demo @ https://example.invalid/demo.whl\n").unwrap_err().to_string();
    assert!(err.contains("URL requirements"), "{err}");
}

#[test]
fn specifiers_become_ranges() {
    let range = |text: &str| specifiers_range(&pep440_rs::VersionSpecifiers::from_str(text).unwrap());
    let v = |text: &str| pep440_rs::Version::from_str(text).unwrap();
    assert!(range("~=2.2").contains(&v("2.9")) && !range("~=2.2").contains(&v("3.0")));
    assert!(range("~=2.2.1").contains(&v("2.2.5")) && !range("~=2.2.1").contains(&v("2.3")));
    assert!(range("==1.*").contains(&v("1.99")) && !range("==1.*").contains(&v("2.0")));
    assert!(range(">=1,!=1.5").contains(&v("1.4")) && !range(">=1,!=1.5").contains(&v("1.5")));
}

#[test]
fn metadata_and_licences() {
    let parsed = parse_metadata(std::str::from_utf8(METADATA).unwrap());
    assert_eq!((parsed.name.as_str(), parsed.license.as_deref()), ("demo", Some("MIT")));
    assert_eq!(parsed.requires_dist, ["six"]);
    let classified = parse_metadata(
        "Name: x\nVersion: 1\nLicense: Copyright (c) 2008 somebody\n all rights\nClassifier: License :: OSI Approved :: BSD License\n\n",
    );
    assert_eq!(classified.license.as_deref(), Some("BSD-3-Clause"));
    let expression = parse_metadata("Name: x\nVersion: 1\nLicense-Expression: Apache-2.0 OR MIT\n\n");
    assert_eq!(expression.license.as_deref(), Some("Apache-2.0 OR MIT"));
    assert_eq!(normalize_name("Zope.Interface__x"), "zope-interface-x");
}

#[tokio::test]
async fn html_index_pages_are_read_with_hashes_and_metadata_flags() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (wheel_hash, metadata_hash) = (kiln_oci::Digest::sha256(b"wheel"), kiln_oci::Digest::sha256(b"metadata"));
    let page = format!(
        "<html><body>\n<a href=\"../../files/demo-1.0-py3-none-any.whl#sha256={}\" data-requires-python=\"&gt;=3.8\" \
         data-dist-info-metadata=\"sha256={}\">demo-1.0-py3-none-any.whl</a><br/>\n\
         <a href=\"../../files/demo-0.9.tar.gz#sha256=123\" data-yanked=\"\">demo-0.9.tar.gz</a>\n</body></html>",
        wheel_hash.hex(),
        metadata_hash.hex()
    );
    tokio::spawn(async move {
        for _ in 0..2 {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buffer = [0u8; 2048];
            let n = socket.read(&mut buffer).await.unwrap();
            let request = String::from_utf8_lossy(&buffer[..n]).to_string();
            let response = if request.starts_with("GET /simple/demo/ ") {
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
                    page.len()
                )
            } else {
                "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_string()
            };
            socket.write_all(response.as_bytes()).await.unwrap();
        }
    });
    let spec = IndexSpec { label: "test".into(), url: format!("http://{address}/simple"), basic_auth: None };
    let index = Index::new(reqwest::Client::new(), vec![spec]);
    let files = index.files("Demo").await.unwrap();
    assert_eq!(files.len(), 2);
    assert_eq!(files[0].url, format!("http://{address}/files/demo-1.0-py3-none-any.whl"));
    assert_eq!(files[0].sha256().ok(), Some(&wheel_hash));
    assert_eq!(files[0].requires_python.as_deref(), Some(">=3.8"));
    assert_eq!(files[0].metadata, Some(Some(metadata_hash)));
    assert!(files[1].sha256().is_err(), "123 is no SHA-256");
    assert!(files[1].yanked && !files[0].yanked);
    let missing = index.files("nope").await.unwrap_err().to_string();
    assert!(missing.contains("no project nope in test"), "{missing}");
}

#[test]
fn zip_bombs_stop_at_the_build_budget_one_or_four_at_once() {
    let memory = crate::memory::MemoryBudget::new(64 << 20);
    let bomb = zip_bomb(4);
    assert!(bomb.len() < 1 << 20, "the bomb is small: {} bytes", bomb.len());
    let install = || install_wheel(std::io::Cursor::new(&bomb), &target(), &Limits::default(), &memory);
    let error = install().unwrap_err();
    assert!(error.is_over_budget(), "{error}");
    let message = error.to_string();
    assert!(message.contains("\"demo/zeros"), "{message}");
    assert!(message.contains("the build's memory limit of 64 MiB"), "{message}");
    assert_eq!(memory.held(), 0, "a refused wheel gives its reservation back");

    let errors: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4).map(|_| scope.spawn(|| install().unwrap_err().to_string())).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for message in &errors {
        assert!(message.contains("zip bomb"), "{message}");
    }
    assert!(memory.peak() <= 64 << 20, "four bombs held {} together", memory.peak());
    assert_eq!(memory.held(), 0);
}
