//! `file://` objects, confined for real: a read or a write goes through symbolic links
//! only when the file or folder it reaches still lies under an allowed prefix.
//!
//! Checking the text of a path is not enough: `allowed/link.npy → ../secret.npy` passes
//! any prefix test and opens the secret. Resolving the path first and opening it after
//! is not enough either (the link can be swapped in between). So every check is made on
//! what was actually opened: a read opens the file, asks the kernel where that open file
//! lives (`/proc/self/fd`), and reads from the same descriptor only if it is inside; a
//! write walks from the allowed root one folder at a time, each opened relative to the
//! last and checked the same way, creates missing folders relative to a checked one,
//! writes a temporary file there without following links, and renames it into place
//! (readers see the old file or the new one, never half of one). Blocking calls: the
//! store runs them on tokio's blocking threads, under its time bound.

use super::ObjectError;
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

/// The allowed folders of `file://` URLs: each as configured and as it resolves now.
#[derive(Debug, Clone)]
pub(super) struct Roots {
    roots: Vec<PathBuf>,
}

impl Roots {
    /// Roots from the allowed URL prefixes (others than `file://` are skipped).
    pub(super) fn new(prefixes: &[String]) -> Roots {
        let roots = prefixes
            .iter()
            .filter_map(|p| url::Url::parse(p).ok())
            .filter(|u| u.scheme() == "file")
            .filter_map(|u| u.to_file_path().ok())
            .collect();
        Roots { roots }
    }

    /// Where each root resolves to now (a root that does not exist yet stands for
    /// itself): asked once per operation, as an operator may create or move a folder.
    fn resolved(&self) -> Resolved {
        Resolved(
            self.roots
                .iter()
                .map(|r| std::fs::canonicalize(r).unwrap_or_else(|_| r.clone()))
                .collect(),
        )
    }

    /// The configured root a path lies under, by its text.
    fn root_of(&self, path: &Path) -> Option<&PathBuf> {
        self.roots.iter().find(|r| path.starts_with(r))
    }
}

/// The roots as they resolve for one operation.
struct Resolved(Vec<PathBuf>);

impl Resolved {
    /// Refuses an opened file or folder that lives outside every root.
    fn check(&self, fd: &OwnedFd, url: &str) -> Result<(), ObjectError> {
        let real = real_path(fd, url)?;
        if self.0.iter().any(|r| real.starts_with(r)) {
            return Ok(());
        }
        Err(ObjectError::Refused(format!(
            "object URL `{url}` is outside the readable prefixes: it leads (through a \
             symbolic link) to {}",
            real.display()
        )))
    }
}

/// Reads the file at `path` whole, if it is a regular file inside the roots and at most
/// `max` bytes.
pub(super) fn read(
    roots: &Roots,
    path: &Path,
    url: &str,
    max: u64,
) -> Result<Vec<u8>, ObjectError> {
    // Non-blocking, so a link to a FIFO cannot hang the open.
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io_error(e, url))?;
    roots.resolved().check(&fd, url)?;
    let stat = rustix::fs::fstat(&fd).map_err(|e| io_error(e, url))?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
        return Err(ObjectError::Refused(format!(
            "object URL `{url}` is not a regular file"
        )));
    }
    let size = u64::try_from(stat.st_size).unwrap_or(0);
    if size > max {
        return Err(ObjectError::Refused(format!(
            "object {url} is {size} bytes, over the blob limit of {max} bytes"
        )));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    std::fs::File::from(fd)
        .take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| unreachable(url, &e))?;
    if bytes.len() as u64 > max {
        return Err(ObjectError::Refused(format!(
            "object {url} grew over the blob limit of {max} bytes while it was read"
        )));
    }
    Ok(bytes)
}

/// Writes `bytes` as the file at `path`, replacing it atomically; missing folders are
/// created, each inside the roots.
pub(super) fn write(
    roots: &Roots,
    path: &Path,
    url: &str,
    bytes: &[u8],
) -> Result<(), ObjectError> {
    let (dir, name) = open_parent(roots, path, url, true)?.ok_or_else(|| {
        ObjectError::Unreachable(format!("object storage at {url}: its folder vanished"))
    })?;
    let tmp = format!(".{}.{:016x}.tmp", name.to_string_lossy(), nonce());
    let fd = rustix::fs::openat(
        &dir,
        tmp.as_str(),
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    )
    .map_err(|e| io_error(e, url))?;
    let written = std::fs::File::from(fd).write_all(bytes);
    let renamed = written.map_err(|e| unreachable(url, &e)).and_then(|()| {
        rustix::fs::renameat(&dir, tmp.as_str(), &dir, name.as_os_str())
            .map_err(|e| io_error(e, url))
    });
    if renamed.is_err() {
        let _ = rustix::fs::unlinkat(&dir, tmp.as_str(), AtFlags::empty());
    }
    renamed
}

/// Deletes the file at `path`, and its folder if that is left empty (an attempt's own
/// folder, a refused submit's job folder: no other writer uses it); a file or folder
/// that is not there is not an error.
pub(super) fn delete(roots: &Roots, path: &Path, url: &str) -> Result<(), ObjectError> {
    let Some((dir, name)) = open_parent(roots, path, url, false)? else {
        return Ok(());
    };
    match rustix::fs::unlinkat(&dir, name.as_os_str(), AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => {}
        Err(e) => return Err(io_error(e, url)),
    }
    if let Some(folder) = path.parent()
        && roots
            .root_of(folder)
            .is_some_and(|root| folder != root.as_path())
        && let Ok(Some((up, name))) = open_parent(roots, folder, url, false)
    {
        // Fails, harmlessly, unless the folder is empty.
        let _ = rustix::fs::unlinkat(&up, name.as_os_str(), AtFlags::REMOVEDIR);
    }
    Ok(())
}

/// The folder `path` is in, opened by walking from its root (each step checked inside
/// the roots; missing folders created when `create`), and the file's name. `None` when
/// a folder is missing and `create` is off.
fn open_parent(
    roots: &Roots,
    path: &Path,
    url: &str,
    create: bool,
) -> Result<Option<(OwnedFd, std::ffi::OsString)>, ObjectError> {
    let outside = || {
        ObjectError::Refused(format!(
            "object URL `{url}` is outside the allowed prefixes"
        ))
    };
    let root = roots.root_of(path).ok_or_else(outside)?;
    let rest = path.strip_prefix(root).map_err(|_| outside())?;
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for c in rest.components() {
        match c {
            Component::Normal(p) => parts.push(p),
            Component::CurDir => {}
            _ => return Err(outside()),
        }
    }
    let name = parts.pop().ok_or_else(outside)?.to_os_string();
    if create {
        // The root itself is the operator's own setting: create it as configured.
        std::fs::create_dir_all(root).map_err(|e| unreachable(url, &e))?;
    }
    let dir_flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let mut dir = match rustix::fs::open(root, dir_flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::NOENT) if !create => return Ok(None),
        Err(e) => return Err(io_error(e, url)),
    };
    // Resolved after the root may have been created; each folder opened is checked.
    let resolved = roots.resolved();
    resolved.check(&dir, url)?;
    for part in parts {
        let next = match rustix::fs::openat(&dir, part, dir_flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) if create => {
                match rustix::fs::mkdirat(&dir, part, Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(io_error(e, url)),
                }
                // Made here, in a checked folder: not followed if swapped for a link.
                rustix::fs::openat(&dir, part, dir_flags | OFlags::NOFOLLOW, Mode::empty())
                    .map_err(|e| io_error(e, url))?
            }
            Err(Errno::NOENT) => return Ok(None),
            Err(e) => return Err(io_error(e, url)),
        };
        resolved.check(&next, url)?;
        dir = next;
    }
    Ok(Some((dir, name)))
}

/// Where an open file or folder lives, as the kernel knows it.
#[cfg(target_os = "linux")]
fn real_path(fd: &OwnedFd, url: &str) -> Result<PathBuf, ObjectError> {
    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd()))
        .map_err(|e| unreachable(url, &e))
}

/// Where an open file or folder lives: only Linux says (through `/proc`), so elsewhere
/// `file://` objects are refused rather than read unconfined.
#[cfg(not(target_os = "linux"))]
fn real_path(_fd: &OwnedFd, url: &str) -> Result<PathBuf, ObjectError> {
    Err(ObjectError::Refused(format!(
        "object URL `{url}`: file:// object storage needs Linux, to check where symbolic links lead"
    )))
}

/// A file-system error as the store's error classes (docs/object-storage.md).
fn io_error(e: Errno, url: &str) -> ObjectError {
    match e {
        Errno::NOENT => ObjectError::Missing(format!("no object at {url}")),
        Errno::ACCESS | Errno::PERM | Errno::ROFS => {
            ObjectError::Rejected(format!("object storage at {url}: permission denied ({e})"))
        }
        Errno::LOOP | Errno::NOTDIR | Errno::ISDIR | Errno::NAMETOOLONG => {
            ObjectError::Refused(format!("object URL `{url}`: {e}"))
        }
        e => ObjectError::Unreachable(format!("object storage at {url}: {e}")),
    }
}

fn unreachable(url: &str, e: &std::io::Error) -> ObjectError {
    ObjectError::Unreachable(format!("object storage at {url}: {e}"))
}

/// A number no other writer picks at the same time (temporary file names).
fn nonce() -> u64 {
    gpujobs_core::model::id::random_u64()
}

#[cfg(all(test, target_os = "linux"))]
#[allow(clippy::unwrap_used)] // tests: a panic is the failure report
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    struct Tree {
        dir: PathBuf,
    }

    impl Tree {
        fn new(name: &str) -> Tree {
            let dir = std::env::temp_dir().join(format!("gpujobs-local-{name}-{}", nonce()));
            std::fs::create_dir_all(dir.join("allowed/sub")).unwrap();
            std::fs::create_dir_all(dir.join("secret")).unwrap();
            std::fs::write(dir.join("secret/key.bin"), b"SECRET!!").unwrap();
            std::fs::write(dir.join("allowed/ok.bin"), b"public..").unwrap();
            Tree { dir }
        }
        fn roots(&self) -> Roots {
            Roots::new(&[format!("file://{}/allowed", self.dir.display())])
        }
        fn p(&self, rel: &str) -> PathBuf {
            self.dir.join(rel)
        }
    }

    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn refused(r: Result<impl std::fmt::Debug, ObjectError>) -> String {
        match r {
            Err(ObjectError::Refused(m)) => m,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn links_inside_are_followed_and_links_out_are_refused() {
        let t = Tree::new("read");
        let roots = t.roots();
        assert_eq!(
            read(&roots, &t.p("allowed/ok.bin"), "u", 1 << 20).unwrap(),
            b"public.."
        );
        // A link that stays inside is fine.
        symlink(t.p("allowed/ok.bin"), t.p("allowed/inside.bin")).unwrap();
        assert_eq!(
            read(&roots, &t.p("allowed/inside.bin"), "u", 1 << 20).unwrap(),
            b"public.."
        );
        // To a file, to a folder, and a chain of links: all refused, naming the target.
        symlink("../secret/key.bin", t.p("allowed/file-link.bin")).unwrap();
        symlink("../secret", t.p("allowed/dir-link")).unwrap();
        symlink("file-link.bin", t.p("allowed/chain.bin")).unwrap();
        for rel in [
            "allowed/file-link.bin",
            "allowed/dir-link/key.bin",
            "allowed/chain.bin",
        ] {
            let m = refused(read(&roots, &t.p(rel), "u", 1 << 20));
            assert!(
                m.contains("outside the readable prefixes") && m.contains("secret"),
                "{m}"
            );
        }
        // A FIFO does not hang the reader.
        let fifo = t.p("allowed/fifo");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        assert!(refused(read(&roots, &fifo, "u", 1 << 20)).contains("not a regular file"));
    }

    #[test]
    fn writes_never_land_outside_through_a_linked_folder() {
        let t = Tree::new("write");
        let roots = t.roots();
        write(&roots, &t.p("allowed/new/deeper/x.npy"), "u", b"abcd").unwrap();
        assert_eq!(
            std::fs::read(t.p("allowed/new/deeper/x.npy")).unwrap(),
            b"abcd"
        );
        // Replaced atomically, no temporary file left behind.
        write(&roots, &t.p("allowed/new/deeper/x.npy"), "u", b"efgh").unwrap();
        assert_eq!(
            std::fs::read_dir(t.p("allowed/new/deeper"))
                .unwrap()
                .count(),
            1
        );
        symlink("../secret", t.p("allowed/out")).unwrap();
        refused(write(&roots, &t.p("allowed/out/result.npy"), "u", b"xxxx"));
        refused(write(
            &roots,
            &t.p("allowed/out/made/result.npy"),
            "u",
            b"xxxx",
        ));
        assert!(!t.p("secret/result.npy").exists() && !t.p("secret/made").exists());
        // A file that is a link is replaced (the rename does not follow it), never
        // written through.
        symlink("../secret/key.bin", t.p("allowed/key.bin")).unwrap();
        write(&roots, &t.p("allowed/key.bin"), "u", b"mine").unwrap();
        assert_eq!(std::fs::read(t.p("secret/key.bin")).unwrap(), b"SECRET!!");
        // Deleting through a linked folder is refused too.
        refused(delete(&roots, &t.p("allowed/out/key.bin"), "u"));
        assert!(t.p("secret/key.bin").exists());
        delete(&roots, &t.p("allowed/new/deeper/x.npy"), "u").unwrap();
        assert!(
            !t.p("allowed/new/deeper").exists(),
            "an emptied folder goes too"
        );
        assert!(t.p("allowed/new").exists(), "only the file's own folder");
        delete(&roots, &t.p("allowed/nothing/here.npy"), "u").unwrap();
        // A folder that still holds something stays.
        write(&roots, &t.p("allowed/kept/a.npy"), "u", b"a").unwrap();
        write(&roots, &t.p("allowed/kept/b.npy"), "u", b"b").unwrap();
        delete(&roots, &t.p("allowed/kept/a.npy"), "u").unwrap();
        assert!(t.p("allowed/kept/b.npy").exists());
    }

    #[test]
    fn a_link_swapped_in_between_never_leaks_the_target() {
        let t = Tree::new("race");
        let roots = t.roots();
        let target = t.p("allowed/flip.bin");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flipped = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let flipper = {
            let (target, stop, flipped) = (target.clone(), stop.clone(), flipped.clone());
            let (real, secret) = (t.p("allowed/ok.bin"), t.p("secret/key.bin"));
            std::thread::spawn(move || {
                let tmp = target.with_extension("tmp");
                let mut n = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = std::fs::remove_file(&tmp);
                    if n.is_multiple_of(2) {
                        std::fs::copy(&real, &tmp).unwrap();
                    } else {
                        symlink(&secret, &tmp).unwrap();
                    }
                    std::fs::rename(&tmp, &target).unwrap();
                    n += 1;
                    flipped.store(n, std::sync::atomic::Ordering::Relaxed);
                }
                n
            })
        };
        // On a loaded machine the flipper may not run at once: let it start, then read
        // at least 3000 times and until both outcomes were seen (or 30 s passed).
        let start = std::time::Instant::now();
        let relaxed = std::sync::atomic::Ordering::Relaxed;
        while flipped.load(relaxed) < 2 && start.elapsed() < std::time::Duration::from_secs(30) {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let (mut ok, mut no, mut reads) = (0, 0, 0);
        while reads < 3000
            || ((ok == 0 || no == 0) && start.elapsed() < std::time::Duration::from_secs(30))
        {
            reads += 1;
            match read(&roots, &target, "u", 1 << 20) {
                Ok(bytes) => {
                    assert_eq!(bytes, b"public..", "a read returned the secret");
                    ok += 1;
                }
                Err(ObjectError::Refused(_) | ObjectError::Missing(_)) => no += 1,
                Err(e) => panic!("{e}"),
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let flips = flipper.join().unwrap();
        assert!(
            flips > 10 && ok > 0 && no > 0,
            "flips {flips}, read {ok}, refused {no}"
        );
    }
}
