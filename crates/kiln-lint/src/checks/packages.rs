//! Package managers that install whatever is newest: apt (KL002), dnf/yum
//! (KL003), apk (KL004), pip (KL005) and npm/yarn/pnpm (KL017).

use super::{dedup, list, operands, Problems, RunCtx};
use crate::rules::RuleId;
use crate::shell::{SimpleCommand, Word};

pub(crate) fn check(ctx: &RunCtx, out: &mut Problems) {
    for cmd in &ctx.script.commands {
        match cmd.name() {
            "apt-get" | "apt" | "aptitude" => apt(ctx, cmd, out),
            "dnf" | "dnf5" | "yum" | "microdnf" | "tdnf" => dnf(ctx, cmd, out),
            "apk" => apk(ctx, cmd, out),
            "npm" | "yarn" | "pnpm" => node(ctx, cmd, out),
            _ => {}
        }
        if let Some(args) = pip_args(cmd) {
            pip(ctx, cmd, args, out);
        }
    }
}

/// Expands each operand to its values; operands only known at run time
/// (`$(cat pkgs.txt)`) are skipped: better silent than wrong.
fn values(ctx: &RunCtx, words: &[&Word]) -> Vec<String> {
    words
        .iter()
        .filter_map(|w| ctx.vars.fields(w))
        .flatten()
        .collect()
}

const APT_VALUE_OPTS: &[&str] = &[
    "-o",
    "-c",
    "-t",
    "-S",
    "--option",
    "--config-file",
    "--target-release",
    "--default-release",
    "--snapshot",
];

/// The apt subcommand (`install`, `update`, ...) and its operands.
pub(crate) fn apt_subcommand(cmd: &SimpleCommand) -> Option<(String, Vec<&Word>)> {
    if !matches!(cmd.name(), "apt-get" | "apt" | "aptitude") {
        return None;
    }
    // Simulations and downloads change nothing in the image.
    let dry = cmd.args().iter().any(|w| {
        matches!(
            w.text.as_str(),
            "-s" | "--simulate"
                | "--just-print"
                | "--dry-run"
                | "--recon"
                | "--no-act"
                | "-d"
                | "--download-only"
                | "--print-uris"
        )
    });
    if dry {
        return None;
    }
    let ops = operands(cmd.args(), APT_VALUE_OPTS);
    let (sub, rest) = ops.split_first()?;
    Some((sub.text.clone(), rest.to_vec()))
}

fn apt_pinned(pkg: &str) -> bool {
    if pkg.ends_with(".deb")
        || pkg.starts_with('/')
        || pkg.starts_with("./")
        || pkg.starts_with("../")
    {
        return true;
    }
    // `pkg-` removes a package instead of installing it.
    if pkg.ends_with('-') {
        return true;
    }
    match pkg.split_once('=') {
        Some((name, version)) => !name.is_empty() && !version.is_empty() && !version.contains('*'),
        None => false,
    }
}

fn apt(ctx: &RunCtx, cmd: &SimpleCommand, out: &mut Problems) {
    let Some((sub, pkgs)) = apt_subcommand(cmd) else {
        return;
    };
    let snapshot = ctx.apt_snapshot
        || cmd.args().iter().any(|w| {
            w.text == "-S" || w.text.starts_with("--snapshot") || w.text.contains("::Snapshot=")
        });
    if snapshot {
        return;
    }
    let tool = cmd.name();
    match sub.as_str() {
        "install" | "reinstall" => {
            let values = values(ctx, &pkgs);
            let mut unpinned: Vec<String> = values.into_iter().filter(|p| !apt_pinned(p)).collect();
            dedup(&mut unpinned);
            if !unpinned.is_empty() {
                out.add(
                    RuleId::AptUnpinned,
                    format!(
                        "`{tool} {sub}` of {} without a version pin or a snapshot mirror",
                        list(&unpinned)
                    ),
                );
            }
        }
        "upgrade" | "dist-upgrade" | "full-upgrade" | "build-dep" => out.add(
            RuleId::AptUnpinned,
            format!(
                "`{tool} {sub}` takes the newest packages on the mirror (no snapshot mirror set)"
            ),
        ),
        _ => {}
    }
}

const DNF_VALUE_OPTS: &[&str] = &[
    "-c",
    "--config",
    "--installroot",
    "--releasever",
    "--setopt",
    "--enablerepo",
    "--disablerepo",
    "--repo",
    "--repoid",
    "--repofrompath",
    "-x",
    "--exclude",
    "--forcearch",
    "-d",
    "--debuglevel",
    "-e",
    "--errorlevel",
    "--rpmverbosity",
    "--downloaddir",
    "--destdir",
    "--color",
    "--advisory",
    "--comment",
];

/// `name-version[-release]`: a dash followed by a digit after the name.
fn rpm_pinned(pkg: &str) -> bool {
    if pkg.ends_with(".rpm") || pkg.starts_with('/') || pkg.starts_with("./") || pkg.contains("://")
    {
        return true;
    }
    if pkg.starts_with('@') {
        return false;
    }
    let b = pkg.as_bytes();
    (1..b.len()).any(|i| b[i - 1] == b'-' && b[i].is_ascii_digit())
}

fn dnf(ctx: &RunCtx, cmd: &SimpleCommand, out: &mut Problems) {
    let ops = operands(cmd.args(), DNF_VALUE_OPTS);
    let Some((sub, pkgs)) = ops.split_first() else {
        return;
    };
    let tool = cmd.name();
    let sub = sub.text.as_str();
    match sub {
        "install" | "in" | "reinstall" | "localinstall" | "groupinstall" | "upgrade" | "update"
        | "up" | "distro-sync" | "dsync" | "upgrade-minimal" => {}
        _ => return,
    }
    let upgrade = !matches!(
        sub,
        "install" | "in" | "reinstall" | "localinstall" | "groupinstall"
    );
    if upgrade && pkgs.is_empty() {
        out.add(
            RuleId::DnfUnpinned,
            format!("`{tool} {sub}` takes the newest packages in the repositories"),
        );
        return;
    }
    let values = values(ctx, pkgs);
    let mut unpinned: Vec<String> = values
        .into_iter()
        .filter(|p| sub == "groupinstall" || !rpm_pinned(p))
        .collect();
    dedup(&mut unpinned);
    if !unpinned.is_empty() {
        out.add(
            RuleId::DnfUnpinned,
            format!("`{tool} {sub}` of {} without a version", list(&unpinned)),
        );
    }
}

const APK_VALUE_OPTS: &[&str] = &[
    "-X",
    "--repository",
    "-t",
    "--virtual",
    "-p",
    "--root",
    "--arch",
    "--keys-dir",
    "--repositories-file",
    "--cache-dir",
    "--cache-max-age",
    "--timeout",
];

fn apk_pinned(pkg: &str) -> bool {
    if pkg.ends_with(".apk") || pkg.starts_with('/') || pkg.starts_with("./") {
        return true;
    }
    match pkg.find('=') {
        // `name=version` exactly; `>=`, `<=` and `~=` are ranges.
        Some(i) if i > 0 => {
            !matches!(pkg.as_bytes()[i - 1], b'<' | b'>' | b'~') && i + 1 < pkg.len()
        }
        _ => false,
    }
}

fn apk(ctx: &RunCtx, cmd: &SimpleCommand, out: &mut Problems) {
    let ops = operands(cmd.args(), APK_VALUE_OPTS);
    let Some((sub, pkgs)) = ops.split_first() else {
        return;
    };
    match sub.text.as_str() {
        "add" => {
            let values = values(ctx, pkgs);
            let mut unpinned: Vec<String> = values.into_iter().filter(|p| !apk_pinned(p)).collect();
            dedup(&mut unpinned);
            if !unpinned.is_empty() {
                out.add(
                    RuleId::ApkUnpinned,
                    format!("`apk add` of {} without `=version`", list(&unpinned)),
                );
            }
        }
        "upgrade" => out.add(
            RuleId::ApkUnpinned,
            "`apk upgrade` takes the newest packages in the repositories",
        ),
        _ => {}
    }
}

/// The arguments after `pip` for `pip ...`, `pip3.12 ...`,
/// `python3 -m pip ...` and `uv pip ...`.
pub(crate) fn pip_args(cmd: &SimpleCommand) -> Option<&[Word]> {
    let name = cmd.name();
    let args = cmd.args();
    if let Some(v) = name.strip_prefix("pip") {
        return v
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.')
            .then_some(args);
    }
    if name == "uv" && args.first().is_some_and(|w| w.text == "pip") {
        return Some(&args[1..]);
    }
    if name.starts_with("python") {
        let m = args.iter().position(|w| w.text == "-m")?;
        if args.get(m + 1).is_some_and(|w| w.text == "pip") {
            return Some(&args[m + 2..]);
        }
    }
    None
}

const PIP_VALUE_OPTS: &[&str] = &[
    "-i",
    "--index-url",
    "--extra-index-url",
    "-f",
    "--find-links",
    "-t",
    "--target",
    "--prefix",
    "--root",
    "--platform",
    "--python-version",
    "--implementation",
    "--abi",
    "--upgrade-strategy",
    "--progress-bar",
    "--src",
    "--cache-dir",
    "--trusted-host",
    "--proxy",
    "--timeout",
    "--retries",
    "--log",
    "--exists-action",
    "--global-option",
    "--config-settings",
    "-C",
    "--report",
    "--python",
    "--only-binary",
    "--no-binary",
];

fn truthy(v: Option<&str>) -> bool {
    v.is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"))
}

/// What `pip install` was given.
#[derive(Default)]
pub(crate) struct PipInstall {
    pub require_hashes: bool,
    pub constraints: bool,
    pub no_deps: bool,
    pub no_index: bool,
    pub no_compile: bool,
    pub compile_bytecode: bool,
    pub files: Vec<Word>,
    pub editables: Vec<Word>,
    pub reqs: Vec<Word>,
}

/// Reads `pip install` arguments; `None` for other pip subcommands.
pub(crate) fn pip_install(args: &[Word]) -> Option<PipInstall> {
    let ops = operands(args, PIP_VALUE_OPTS);
    let sub = ops.first()?;
    if sub.text != "install" {
        return None;
    }
    let start = args.iter().position(|w| std::ptr::eq(w, *sub))? + 1;
    let mut p = PipInstall::default();
    let mut it = args[start..].iter();
    while let Some(w) = it.next() {
        let t = w.text.as_str();
        match t {
            "--require-hashes" => p.require_hashes = true,
            "--no-deps" => p.no_deps = true,
            "--no-index" => p.no_index = true,
            "--no-compile" => p.no_compile = true,
            "--compile-bytecode" | "--compile" => p.compile_bytecode = true,
            "-r" | "--requirement" => p.files.extend(it.next().cloned()),
            "-c" | "--constraint" => {
                it.next();
                p.constraints = true;
            }
            "-e" | "--editable" => p.editables.extend(it.next().cloned()),
            _ if t.starts_with("--requirement=")
                || (t.starts_with("-r") && !t.starts_with("--")) =>
            {
                let v = t.strip_prefix("--requirement=").unwrap_or_else(|| &t[2..]);
                p.files.push(Word {
                    text: v.to_string(),
                    dynamic: w.dynamic,
                });
            }
            _ if t.starts_with("--constraint=") => p.constraints = true,
            _ if PIP_VALUE_OPTS.contains(&t) => {
                it.next();
            }
            _ if t.starts_with('-') => {}
            _ => p.reqs.push(w.clone()),
        }
    }
    Some(p)
}

fn is_local(req: &str) -> bool {
    req.starts_with('.')
        || req.starts_with('/')
        || req.ends_with(".whl")
        || req.ends_with(".tar.gz")
        || req.ends_with(".zip")
}

/// A requirement specifier that names one exact release.
fn pip_spec_pinned(spec: &str) -> bool {
    let spec = spec.split(';').next().unwrap_or("").trim();
    if spec.contains("===") {
        return true;
    }
    match spec.split_once("==") {
        Some((_, v)) => {
            let v = v.trim();
            !v.is_empty() && !v.contains('*') && !v.contains(',')
        }
        None => false,
    }
}

fn pip_url_pinned(url: &str) -> bool {
    if url.contains("#sha256=") || url.contains("&sha256=") {
        return true;
    }
    // git+https://host/repo@<commit>
    url.rsplit_once('@')
        .map(|(_, r)| r.split(['#', '&']).next().unwrap_or(""))
        .is_some_and(super::is_commit)
}

/// Unpinned lines of a requirements file; `None` when every line carries a
/// hash (pip then checks hashes for everything).
fn requirements_unpinned(text: &str) -> Option<Vec<String>> {
    let joined = text.replace("\\\r\n", " ").replace("\\\n", " ");
    let mut unpinned = Vec::new();
    let mut all_hashed = true;
    let mut any = false;
    for line in joined.lines() {
        let line = match line.find(" #") {
            Some(i) => &line[..i],
            None => line,
        };
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('-') {
            continue;
        }
        any = true;
        if !line.contains("--hash=") {
            all_hashed = false;
        }
        let spec = line.split_whitespace().next().unwrap_or("");
        let pinned = if spec.contains("://") {
            pip_url_pinned(spec)
        } else {
            pip_spec_pinned(spec)
        };
        if !pinned {
            unpinned.push(spec.to_string());
        }
    }
    (!(any && all_hashed)).then_some(unpinned)
}

fn pip(ctx: &RunCtx, cmd: &SimpleCommand, args: &[Word], out: &mut Problems) {
    let Some(p) = pip_install(args) else {
        return;
    };
    let env_hashes = truthy(ctx.vars.get("PIP_REQUIRE_HASHES"));
    let env_constraint = ctx
        .vars
        .get("PIP_CONSTRAINT")
        .is_some_and(|v| !v.is_empty());
    if p.require_hashes || env_hashes || p.no_index {
        return;
    }
    let constrained = p.constraints || env_constraint;
    let mut unpinned = Vec::new();
    for req in &p.reqs {
        let Some(fields) = ctx.vars.fields(req) else {
            continue;
        };
        for r in fields {
            let pinned = if is_local(&r) {
                p.no_deps || constrained
            } else if r.contains("://") {
                pip_url_pinned(&r)
            } else {
                constrained || pip_spec_pinned(&r)
            };
            if !pinned {
                unpinned.push(if is_local(&r) {
                    format!("{r} (its dependencies)")
                } else {
                    r
                });
            }
        }
    }
    if !(p.no_deps || constrained) {
        for e in &p.editables {
            unpinned.push(format!("-e {} (its dependencies)", e.text));
        }
    }
    if !constrained {
        for f in &p.files {
            let Some(path) = ctx.vars.resolve(f) else {
                continue;
            };
            match read_requirements(ctx, &path) {
                Some(text) => {
                    if let Some(lines) = requirements_unpinned(&text) {
                        unpinned.extend(lines.into_iter().map(|l| format!("{l} (in {path})")));
                    }
                }
                None => unpinned.push(format!(
                    "-r {path} (not found in the build context, so its pins cannot be checked)"
                )),
            }
        }
    }
    dedup(&mut unpinned);
    if !unpinned.is_empty() {
        let tool = match cmd.name() {
            "uv" => "uv pip".to_string(),
            n if n.starts_with("python") => format!("{n} -m pip"),
            n => n.to_string(),
        };
        out.add(
            RuleId::PipUnpinned,
            format!(
                "`{tool} install` of {} without `==` pins or --require-hashes",
                list(&unpinned)
            ),
        );
    }
}

/// Finds a requirements file in the build context: as written (relative),
/// else by its base name at the context root.
fn read_requirements(ctx: &RunCtx, path: &str) -> Option<String> {
    let c = ctx.context?;
    if !path.starts_with('/') {
        if let Some(t) = c.read(path) {
            return Some(t);
        }
    }
    let base = path.rsplit('/').next()?;
    c.read(base)
}

const NPM_INSTALL: &[&str] = &[
    "install", "i", "in", "ins", "inst", "insta", "instal", "isnt", "isnta", "isntal", "isntall",
    "add",
];

const NPM_VALUE_OPTS: &[&str] = &[
    "--prefix",
    "--registry",
    "--cache",
    "-w",
    "--workspace",
    "--omit",
    "--include",
    "--userconfig",
    "--loglevel",
    "--install-strategy",
    "--tag",
    "--cwd",
    "--modules-folder",
    "--cache-folder",
    "--network-timeout",
    "--filter",
    "-C",
    "--dir",
];

/// `name@1.2.3`, `@scope/name@1.2.3-rc.1`, or a local path or tarball.
fn npm_pinned(spec: &str) -> bool {
    if spec.starts_with('.')
        || spec.starts_with('/')
        || spec.ends_with(".tgz")
        || spec.starts_with("file:")
    {
        return true;
    }
    let Some(at) = spec.rfind('@').filter(|&i| i > 0) else {
        return false;
    };
    let version = &spec[at + 1..];
    let core = version.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

fn node(ctx: &RunCtx, cmd: &SimpleCommand, out: &mut Problems) {
    let tool = cmd.name();
    let mut ops = operands(cmd.args(), NPM_VALUE_OPTS);
    if tool == "yarn" && ops.first().is_some_and(|w| w.text == "global") {
        ops.remove(0);
    }
    let sub = ops.first().map(|w| w.text.as_str());
    let frozen = cmd.args().iter().any(|w| {
        matches!(
            w.text.as_str(),
            "--frozen-lockfile" | "--immutable" | "--frozen-lockfile=true"
        )
    }) || truthy(ctx.vars.get("YARN_ENABLE_IMMUTABLE_INSTALLS"));
    let adds = match (tool, sub) {
        ("npm", Some("update" | "up" | "upgrade")) => {
            out.add(
                RuleId::NpmInstall,
                "`npm update` moves dependencies to the newest matching releases",
            );
            return;
        }
        ("npm", Some(s)) if NPM_INSTALL.contains(&s) => &ops[1..],
        ("yarn", None | Some("install")) | ("pnpm", Some("install" | "i")) => {
            if !frozen {
                let what = if sub.is_some() {
                    format!("`{tool} install`")
                } else {
                    "`yarn`".to_string()
                };
                out.add(
                    RuleId::NpmInstall,
                    format!("{what} without --frozen-lockfile may change the lockfile and resolve new releases"),
                );
            }
            return;
        }
        ("yarn" | "pnpm", Some("add")) => &ops[1..],
        _ => return,
    };
    if adds.is_empty() {
        out.add(
            RuleId::NpmInstall,
            "`npm install` resolves package.json ranges and may rewrite package-lock.json; use `npm ci`",
        );
        return;
    }
    let values = values(ctx, adds);
    let mut unpinned: Vec<String> = values.into_iter().filter(|p| !npm_pinned(p)).collect();
    dedup(&mut unpinned);
    if !unpinned.is_empty() {
        out.add(
            RuleId::NpmInstall,
            format!(
                "`{tool} {}` of {} without an exact version",
                sub.unwrap_or(""),
                list(&unpinned)
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins() {
        assert!(apt_pinned("curl=7.88.1-10+deb12u8"));
        assert!(apt_pinned("./local.deb"));
        assert!(!apt_pinned("curl"));
        assert!(!apt_pinned("curl=7.*"));
        assert!(!apt_pinned("curl/bookworm-backports"));
        assert!(rpm_pinned("curl-7.76.1-29.el9"));
        assert!(!rpm_pinned("python3-pip"));
        assert!(!rpm_pinned("@development"));
        assert!(apk_pinned("curl=8.5.0-r0"));
        assert!(!apk_pinned("curl>=8"));
        assert!(!apk_pinned("curl"));
        assert!(pip_spec_pinned("requests==2.31.0"));
        assert!(pip_spec_pinned("Flask[async]==3.0.0 ; python_version>'3'"));
        assert!(!pip_spec_pinned("requests>=2"));
        assert!(!pip_spec_pinned("requests==2.*"));
        assert!(npm_pinned("left-pad@1.3.0"));
        assert!(npm_pinned("@scope/x@1.0.0-rc.1"));
        assert!(!npm_pinned("@scope/x"));
        assert!(!npm_pinned("x@^1.0.0"));
        assert!(!npm_pinned("x@latest"));
    }

    #[test]
    fn requirements_files() {
        assert_eq!(
            requirements_unpinned("a==1\n# c\nb==2 ; python_version<'4'\n"),
            Some(vec![])
        );
        assert_eq!(
            requirements_unpinned("-i https://x\na>=1\nb==2\n"),
            Some(vec!["a>=1".to_string()])
        );
        assert_eq!(requirements_unpinned("a>=1 \\\n  --hash=sha256:00\n"), None);
    }
}
