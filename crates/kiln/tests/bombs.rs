//! Decompression bombs through the real binary: a server with a low build memory limit builds
//! images needing one, then four, bomb `.deb`s from a signed loopback repository; each build
//! ends in ERROR naming the bomb, the server's peak resident memory (from /proc) stays near
//! the limit, and four bombs at once cost no more than one. The server is this test's alone,
//! so no other build moves its peak.

mod common;
#[path = "builds/mirror.rs"]
mod mirror;

use std::io::Write;

use common::{Server, image_settled, stderr};
use mirror::{Mirror, TestPackage, apt_config, deb_with, fixture_dir, signed_repository};
use serde_json::json;

const MIB: u64 = 1 << 20;
const LIMIT: u64 = 256 * MIB;

/// A data.tar.gz of `files` files of 8 MiB zeros each: well past the limit unpacked, a few
/// hundred kilobytes packed. Streamed, so the test holds no more than the packed bytes.
fn bomb_data(files: usize) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    for i in 0..files {
        let mut header = tar::Header::new_gnu();
        header.set_path(format!("./usr/share/bomb/part{i}")).expect("bomb path");
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(8 * MIB);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_cksum();
        gz.write_all(header.as_bytes()).expect("tar header");
        std::io::copy(&mut std::io::Read::take(std::io::repeat(0), 8 * MIB), &mut gz).expect("zeros");
    }
    gz.write_all(&[0; 1024]).expect("tar end");
    gz.finish().expect("gzip")
}

/// kB figures of `/proc/<pid>/status`, as bytes.
fn status_bytes(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc status");
    let line = status.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| panic!("no {field} in {status}"));
    let kb: u64 = line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("a number of kB");
    kb * 1024
}

/// Starts a new peak: the kernel sets VmHWM back to the present resident size.
fn reset_peak(pid: u32) -> u64 {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").expect("reset the peak resident size");
    status_bytes(pid, "VmRSS:")
}

/// Builds `name` needing `packages`, which must end in ERROR naming each of `expected`; returns
/// the server's peak resident memory during the build, above what it held before.
fn peak_of_failed_build(server: &Server, name: &str, packages: &[&str], expected: &[&str]) -> u64 {
    let pid = server.child.id();
    let before = reset_peak(pid);
    let packages: Vec<_> = packages.iter().map(|p| json!({"name": p})).collect();
    let created = server.http().post(
        "/v1/images",
        json!({"name": name, "baseImageName": "python3", "systemDependencies": {"packages": packages}}),
    );
    assert_eq!(created.status, 201, "{}", created.text);
    let image = image_settled(server, name);
    assert_eq!(image["status"], "ERROR", "{name}: {image}");
    let reason = image["reason"].to_string();
    for part in expected {
        assert!(reason.contains(part), "{name}: {part:?} not in {image}");
    }
    status_bytes(pid, "VmHWM:").saturating_sub(before)
}

#[test]
fn bombs_end_in_error_by_name_within_the_build_memory_limit() {
    let temp = tempfile::tempdir().expect("temp dir");
    let mirror = Mirror::serve(&fixture_dir(), 0.0);
    let apt = apt_config(temp.path(), &mirror);
    let server = Server::start_with(&temp.path().join("data"), |command| {
        command
            .env("KILN_CONTROLLER", "true")
            .env("KILN_APT_CONFIG_DIR", &apt)
            .env("KILN_CONTROLLER_RETRY_SECONDS", "1")
            .env("KILN_BUILD_MEMORY_LIMIT_BYTES", LIMIT.to_string());
    })
    .0;
    let bootstrap = server.kiln(&["bootstrap", "python3", "--wait"]);
    assert!(bootstrap.status.success(), "{}", stderr(&bootstrap));

    // Five bombs of 384 MiB each, one data member shared: compressing it once is enough.
    let data = bomb_data(48);
    assert!((data.len() as u64) < 2 * MIB, "the bomb is small packed: {} bytes", data.len());
    let names = ["kiln-bomb-0", "kiln-bomb-1", "kiln-bomb-2", "kiln-bomb-3", "kiln-bomb-4"];
    let packages: Vec<TestPackage> = names
        .iter()
        .map(|name| TestPackage { name, depends: "", file: deb_with(name, "data.tar.gz", data.clone()), claimed: None })
        .collect();
    let root = temp.path().join("bombs");
    let key = signed_repository(&root, &packages);
    let bombs = Mirror::serve(&root, 0.0);
    let source = server.http().post(
        "/v1/package-sources",
        json!({"name": "bombs", "ecosystem": "deb", "url": format!("{}/repo", bombs.url),
               "suite": "kiln-test", "components": ["main"], "keyring": key}),
    );
    assert_eq!(source.status, 201, "{}", source.text);

    let one = peak_of_failed_build(
        &server,
        "one-bomb",
        &names[..1],
        &[
            "kiln-bomb-0 1.0 (kiln-bomb-0_1.0_amd64.deb)",
            "data.tar.gz: usr/share/bomb/part",
            "inflates past the build's memory limit of 256 MiB",
            "decompression bomb",
            "--build-memory-limit-bytes",
        ],
    );
    let four = peak_of_failed_build(
        &server,
        "four-bombs",
        &names[1..],
        &["kiln-bomb-", "data.tar.gz: usr/share/bomb/part", "memory limit of 256 MiB"],
    );
    eprintln!("peak resident memory above the start of the build: one bomb {} MiB, four {} MiB", one / MIB, four / MIB);
    let bound = LIMIT + 128 * MIB;
    assert!(one < bound, "one bomb took the server {} MiB above where it was", one / MIB);
    assert!(four < bound, "four bombs took the server {} MiB above where it was", four / MIB);
    // The budget is the build's, not each package's: four bombs at once cost about what one
    // does (each alone would take ~its own limit), give or take the decoders' working memory
    // and allocator slack, which vary from run to run by tens of MiB.
    assert!(four < 2 * one, "four bombs ({} MiB) cost twice what one did ({} MiB)", four / MIB, one / MIB);
    let catalog = server.http().get("/v2/_catalog?n=1000").text;
    assert!(!catalog.contains("bomb"), "a refused build pushed: {catalog}");
}
