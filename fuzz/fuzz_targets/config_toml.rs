//! hookd's configuration file (`hookd::Config::from_toml`): any text must
//! load or be refused with an error, never panic.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = hookd::Config::from_toml(text);
    }
});
