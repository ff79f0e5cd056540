//! The device config loader (TOML) on arbitrary text: an error naming the
//! file or the field, or a config that passes its own validation again.
#![no_main]

use fashion_runtime::config::{ConfigError, DeviceConfig};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("fuzz.toml");
    match DeviceConfig::from_toml(text, path) {
        Ok(cfg) => {
            cfg.validate().expect("a loaded config validates");
            assert_eq!(cfg.clone(), cfg);
        }
        Err(ConfigError::Parse { path: p, message }) => {
            assert_eq!(p, path);
            assert!(!message.is_empty());
        }
        Err(ConfigError::Invalid { field, reason }) => {
            assert!(!field.is_empty() && !reason.is_empty());
        }
        Err(e) => panic!("unexpected error kind: {e}"),
    }
});
