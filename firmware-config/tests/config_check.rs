//! `firmware-config check`: valid configs pass for every built-in board;
//! invalid ones are refused with a message that names the key.

mod common;
use common::{config_text, run};
use firmware_config::board::{builtin, CameraKind};

fn check(board: &str, text: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("device.toml");
    std::fs::write(&path, text).unwrap();
    let (ok, stdout, stderr) = run(&["check", path.to_str().unwrap(), "--board", board]);
    (ok, format!("{stdout}{stderr}"))
}

#[test]
fn valid_configs_pass_on_every_board() {
    for b in builtin() {
        for camera in &b.cameras {
            let source = match camera {
                CameraKind::UsbV4l2 => "v4l:/dev/fashion-camera",
                _ => "mjpeg:-",
            };
            let (ok, out) = check(&b.name, &config_text(source, b.threads));
            assert!(ok, "{} with {source}: {out}", b.name);
            assert!(
                out.contains(&format!("valid for {} ({camera} camera)", b.name)),
                "{out}"
            );
        }
    }
}

#[test]
fn invalid_configs_name_the_key() {
    let good = config_text("mjpeg:-", 4);
    let cases: Vec<(&str, String, &[&str])> = vec![
        (
            "rpi4",
            good.replace("threads = 4", "threads = 8"),
            &["`engine.threads`", "1..=4"],
        ),
        (
            "jetson-orin",
            good.replace("threads = 4", "threads = 7"),
            &["`engine.threads`", "1..=6"],
        ),
        (
            "rpi5",
            good.replace("mjpeg:-", "demo"),
            &["`source`", "mjpeg:-", "v4l:/dev/fashion-camera"],
        ),
        (
            "rpi4",
            good.replace(
                "/opt/fashion-runtime/current/model/edge.onnx",
                "models/edge.onnx",
            ),
            &["`model`", "absolute"],
        ),
        (
            "rpi4",
            good.replace("jsonl = \"-\"", "jsonl = \"/home/pi/out.jsonl\""),
            &["`jsonl`", "/var/lib/fashion-runtime"],
        ),
        (
            "rpi4",
            good.replace("source = \"mjpeg:-\"\n", ""),
            &["`source`", "missing"],
        ),
        (
            "rpi4",
            good.replace("[camera]", "frames = 10\n\n[camera]"),
            &["`frames`"],
        ),
        (
            "jetson-nano",
            good.replace("mjpeg:-", "v4l:video0"),
            &["`source`", "absolute"],
        ),
    ];
    for (board, text, expected) in cases {
        let (ok, out) = check(board, &text);
        assert!(!ok, "{board} accepted:\n{text}");
        for e in expected {
            assert!(
                out.contains(e),
                "{board}: expected `{e}` in:\n{out}\nconfig:\n{text}"
            );
        }
    }
}

#[test]
fn schema_errors_come_from_the_runtime_schema() {
    // An unknown key and a mistyped value: the runtime's serde schema
    // (deny_unknown_fields) refuses both and names the key.
    let (ok, out) = check(
        "rpi4",
        &config_text("mjpeg:-", 4).replace("[camera]", "thraeds = 2\n\n[camera]"),
    );
    assert!(!ok);
    assert!(out.contains("thraeds"), "{out}");
    let (ok, out) = check(
        "rpi4",
        &config_text("mjpeg:-", 4).replace("max_fps = 15", "max_fps = \"fast\""),
    );
    assert!(!ok);
    assert!(out.contains("max_fps"), "{out}");
    let (ok, out) = check("rpi3", &config_text("mjpeg:-", 4));
    assert!(
        !ok && out.contains("unknown board `rpi3`") && out.contains("rpi-zero2w-32"),
        "{out}"
    );
}

#[test]
fn boards_lists_every_profile() {
    let (ok, out, _) = run(&["boards"]);
    assert!(ok);
    for b in builtin() {
        assert!(out.contains(&b.name), "{out}");
    }
    assert!(out.contains("rpicam-vid -t 0 --codec mjpeg --width 640 --height 480 -o - | fashion-runtime tag --source mjpeg:-"));
    let (ok, json, _) = run(&["boards", "--json"]);
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), 6);
    let nano = arr.iter().find(|b| b["name"] == "jetson-nano").unwrap();
    assert_eq!(nano["glibc"], "2.27");
    assert_eq!(nano["camera"], "jetson-csi");
}
