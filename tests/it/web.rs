//! The committed build of the pages (`web/dist`, compiled into the binary)
//! is exactly what its source builds to, and the npm tools the page tests
//! use (axe-core) are installed from the project's lock file.

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
};

fn web_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("web")
}

fn run(program: &str, args: &[&str]) {
    let output = Command::new(program)
        .args(args)
        .current_dir(web_dir())
        .output()
        .unwrap_or_else(|e| panic!("{program} could not start (Node 20 and npm are needed): {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `npm ci` once per test process: the exact tools of `package-lock.json`.
pub fn install() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| run("npm", &["ci", "--no-audit", "--no-fund", "--loglevel=error"]));
}

/// axe-core's script, to run in a page under test.
pub fn axe_source() -> &'static str {
    static AXE: OnceLock<String> = OnceLock::new();
    AXE.get_or_init(|| {
        install();
        std::fs::read_to_string(web_dir().join("node_modules/axe-core/axe.min.js")).expect("axe-core")
    })
}

fn files(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut found = Vec::new();
    let mut folders = vec![root.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).expect("read folder") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                folders.push(path);
            } else {
                let name = path.strip_prefix(root).expect("inside").display().to_string();
                found.push((name, std::fs::read(&path).expect("read file")));
            }
        }
    }
    found.sort();
    found
}

#[test]
fn the_committed_pages_are_what_their_source_builds() {
    install();
    let out = std::env::temp_dir().join(format!("onramp-web-{}", std::process::id()));
    let out_arg = out.display().to_string();
    run("npx", &["buf", "generate"]);
    run("node", &["build.mjs", &out_arg]);
    run("npx", &["tsc", "-p", "."]);
    let built = files(&out);
    let committed = files(&web_dir().join("dist"));
    let _ = std::fs::remove_dir_all(&out);
    let names = |list: &[(String, Vec<u8>)]| list.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(
        names(&built),
        names(&committed),
        "web/dist is stale: run `npm run build` in web/ and commit web/dist"
    );
    for ((name, fresh), (_, old)) in built.iter().zip(&committed) {
        assert!(
            fresh == old,
            "web/dist/{name} differs from its source's build: run `npm run build` in web/ and commit web/dist"
        );
    }
}

#[test]
fn the_person_pages_weigh_at_most_150_kb_of_gzipped_script() {
    let dist = web_dir().join("dist/assets");
    let mut total = 0;
    for (name, bytes) in files(&dist) {
        // The console is a bundle of its own, never sent to the pages.
        if name.starts_with("pages-") && name.ends_with(".js") {
            let mut gzip = Command::new("gzip")
                .args(["-9", "-c"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("gzip");
            use std::io::Write;
            gzip.stdin
                .take()
                .expect("stdin")
                .write_all(&bytes)
                .expect("write");
            total += gzip.wait_with_output().expect("gzip output").stdout.len();
        }
    }
    println!("the pages' script: {total} bytes gzipped");
    assert!(total > 0, "no script in web/dist/assets");
    assert!(
        total <= 150 * 1024,
        "{total} bytes gzipped is over the 150 KB budget"
    );
}
