//! How the rules read less common Dockerfile and shell forms.

use kiln_lint::{lint_str, LintOptions};

const D: &str = "debian:12@sha256:81d93757457f988523814ae0009837ae893f38d3fe123f2c37896f118b4c7804";

/// `(rule id, line)` of each finding; `FROM D` stands for a pinned base.
fn lint(text: &str) -> Vec<(&'static str, usize)> {
    let text = text.replace("FROM D", &format!("FROM {D}"));
    let r = lint_str(&text, "Dockerfile", None, &LintOptions::default()).unwrap();
    r.findings.iter().map(|f| (f.rule().id, f.line)).collect()
}

#[test]
fn heredoc_scripts_are_read_as_shell() {
    let bad = "FROM D\nRUN <<EOF\napt-get update\napt-get install -y curl\nEOF\n";
    assert_eq!(lint(bad), [("KL002", 2), ("KL006", 2), ("KL007", 2)]);
    let clean = "FROM D\nRUN <<EOF\nset -e\napt-get update\napt-get install -y curl=1.2\nrm -rf /var/lib/apt/lists/* /var/log/* /var/cache/ldconfig/aux-cache\nEOF\n";
    assert_eq!(lint(clean), []);
    assert_eq!(
        lint("FROM D\nRUN bash <<'EOF'\nset -e\nuseradd app\nEOF\n"),
        [("KL008", 2)]
    );
}

#[test]
fn heredoc_data_and_other_interpreters_are_not_shell() {
    assert_eq!(
        lint("FROM D\nRUN cat <<EOF > /notes\ndate\nuuidgen\nEOF\n"),
        []
    );
    assert_eq!(
        lint("FROM D\nRUN python3 <<'EOF'\nimport os\nos.system('date')\nEOF\n"),
        []
    );
    assert_eq!(
        lint("FROM D\nRUN <<EOF\n#!/usr/bin/env python3\nprint('date')\nEOF\n"),
        []
    );
    assert_eq!(
        lint("FROM D\nRUN <<EOF\n#!/bin/bash\ndate > /x\nEOF\n"),
        [("KL009", 2)]
    );
}

#[test]
fn snapshot_sources_from_run_heredoc_or_copy() {
    let install = "RUN apt-get update && apt-get install -y curl && rm -rf /var/lib/apt/lists/* /var/log/* /var/cache/ldconfig/aux-cache\n";
    let deb = "deb http://snapshot.debian.org/archive/debian/20240101T000000Z bookworm main";
    assert_eq!(lint(&format!("FROM D\n{install}")), [("KL002", 2)]);
    assert_eq!(
        lint(&format!(
            "FROM D\nRUN cat <<EOF > /etc/apt/sources.list\n{deb}\nEOF\n{install}"
        )),
        []
    );
    assert_eq!(
        lint(&format!(
            "FROM D\nCOPY <<EOF /etc/apt/sources.list\n{deb}\nEOF\n{install}"
        )),
        []
    );
    // A child stage keeps its parent's sources; an unrelated stage does not.
    let two = format!("FROM D AS base\nRUN echo '{deb}' > /etc/apt/sources.list\nFROM base\n{install}FROM D\n{install}");
    assert_eq!(lint(&two), [("KL002", 6)]);
    // `apt-get install --snapshot` (apt >= 2.7).
    assert_eq!(lint("FROM D\nRUN apt-get update --snapshot 20240301T030400Z && apt-get install --snapshot 20240301T030400Z -y curl && rm -rf /var/lib/apt/lists/* /var/log/* /var/cache/ldconfig/aux-cache\n"), []);
}

#[test]
fn words_that_are_not_commands() {
    assert_eq!(
        lint("FROM D\nRUN echo date hostname uuidgen mktemp > /x && echo $RANDOM_SEED\n"),
        []
    );
    assert_eq!(
        lint("FROM D\nRUN if [ \"$(uname -m)\" = x86_64 ]; then echo ok; fi\n"),
        []
    );
    assert_eq!(
        lint("FROM D\nRUN echo web > /etc/hostname && dpkg -l > /pkgs\n"),
        []
    );
    assert_eq!(
        lint("FROM D\nRUN apt-get -s install curl && apt-get install -d -y git\n"),
        []
    );
    assert_eq!(
        lint("FROM D\nRUN npm run build && npm ci --omit=dev && yarn build && go test ./...\n"),
        []
    );
}

#[test]
fn exec_form_and_shells() {
    assert_eq!(
        lint("FROM D\nRUN [\"/bin/bash\", \"-c\", \"set -o pipefail && date > /x\"]\n"),
        [("KL009", 2)]
    );
    assert_eq!(lint("FROM D\nRUN [\"uuidgen\"]\n"), [("KL011", 2)]);
    // Not a POSIX shell: its text is not read.
    assert_eq!(
        lint("FROM D\nSHELL [\"powershell\", \"-Command\"]\nRUN date\n"),
        []
    );
    assert_eq!(
        lint("FROM D\nSHELL [\"/bin/bash\", \"-o\", \"pipefail\", \"-c\"]\nRUN date | tee /x\n"),
        [("KL009", 3)]
    );
    // Wrappers are looked through.
    assert_eq!(
        lint("FROM D\nRUN sudo -E env DEBIAN_FRONTEND=noninteractive apt-get -o Dpkg::Options::=--force-confold install -y vim && sudo rm -rf /var/log/* /var/cache/ldconfig/aux-cache\n"),
        [("KL002", 2)]
    );
}

#[test]
fn variables_are_resolved_from_arg_and_env() {
    let tail = " && rm -rf /var/log/* /var/cache/ldconfig/aux-cache\n";
    assert_eq!(
        lint(&format!(
            "FROM D\nARG PKGS=\"curl git\"\nRUN apt-get install -y $PKGS{tail}"
        )),
        [("KL002", 3)]
    );
    assert_eq!(
        lint(&format!(
            "FROM D\nARG PKGS=\"curl=1 git=2\"\nRUN apt-get install -y $PKGS{tail}"
        )),
        []
    );
    assert_eq!(
        lint(&format!(
            "FROM D\nENV V=7.88\nRUN apt-get install -y curl=${{V}}{tail}"
        )),
        []
    );
    // Only known at run time: not judged.
    assert_eq!(
        lint(&format!(
            "FROM D\nRUN apt-get install -y $(cat /pkgs.txt){tail}"
        )),
        []
    );
    assert_eq!(
        lint("FROM D\nARG REF\nRUN git clone https://x/y.git /y && git -C /y checkout \"$REF\"\n"),
        []
    );
    assert_eq!(lint("FROM D\nARG REF=main\nRUN git clone https://x/y.git /y && git -C /y checkout \"$REF\"\n"), [("KL014", 3)]);
    assert_eq!(
        lint("FROM D\nRUN export GOFLAGS='-trimpath -ldflags=-buildid=' && go build ./...\n"),
        []
    );
}

#[test]
fn source_date_epoch_scope() {
    // ENV carries into child stages; a meta ARG alone is not visible to RUN.
    assert_eq!(lint("FROM D AS base\nENV SOURCE_DATE_EPOCH=0\nFROM base\nRUN pip install x==1 && touch -d @$SOURCE_DATE_EPOCH /x\n"), []);
    // ... into every child: the last one takes the base's state, the others copy it.
    let children = "FROM base AS one\nRUN echo $SOURCE_DATE_EPOCH > /x\nFROM base\nRUN echo $SOURCE_DATE_EPOCH > /y\n";
    assert_eq!(
        lint(&format!(
            "FROM D AS base\nENV SOURCE_DATE_EPOCH=0\n{children}"
        )),
        []
    );
    assert_eq!(
        lint(&format!("FROM D AS base\nENV OTHER=0\n{children}")),
        [("KL019", 4), ("KL019", 6)]
    );
    assert_eq!(
        lint("ARG SOURCE_DATE_EPOCH\nFROM D\nRUN echo $SOURCE_DATE_EPOCH > /x\n"),
        [("KL019", 3)]
    );
    assert_eq!(lint("FROM D\nRUN SOURCE_DATE_EPOCH=$(git log -1 --format=%ct) make && echo $SOURCE_DATE_EPOCH\n"), []);
    // busybox adduser ignores SOURCE_DATE_EPOCH, shadow-utils useradd does not.
    assert_eq!(
        lint("FROM D\nARG SOURCE_DATE_EPOCH\nRUN adduser -D app\n"),
        [("KL008", 3)]
    );
    assert_eq!(lint("FROM D\nARG SOURCE_DATE_EPOCH\nRUN useradd app\n"), []);
}

#[test]
fn stage_references_are_not_images() {
    assert_eq!(
        lint("ARG BUILDER=build\nFROM D AS build\nFROM ${BUILDER}\nRUN true\n"),
        []
    );
    assert_eq!(lint("FROM D AS tools\nFROM D\nRUN --mount=from=tools,target=/t ls /t\nCOPY --from=0 /a /b\n"), []);
    assert_eq!(
        lint(&format!(
            "FROM --platform=$BUILDPLATFORM {D} AS b\nFROM --platform=linux/arm64 b\n"
        )),
        []
    );
    assert_eq!(
        lint("FROM scratch\nCOPY --from=alpine:3 /etc/os-release /\n"),
        [("KL001", 2)]
    );
}

#[test]
fn onbuild_triggers_are_not_linted() {
    // They run in another build, which its own Dockerfile answers for.
    assert_eq!(lint("FROM D\nONBUILD RUN date > /x\n"), []);
}

#[test]
fn mktemp_cleanup_forms() {
    assert_eq!(
        lint("FROM D\nRUN set -e; d=$(mktemp -d); trap 'rm -rf \"$d\"' EXIT; cd \"$d\" && make\n"),
        []
    );
    assert_eq!(lint("FROM D\nRUN export T=`mktemp` && rm -f $T\n"), []);
    assert_eq!(
        lint("FROM D\nRUN cd $(mktemp -d) && make\n"),
        [("KL010", 2)]
    );
    assert_eq!(lint("FROM D\nRUN mktemp -u > /name\n"), []);
}
