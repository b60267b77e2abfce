//! Every pure parser of a kernel file (/proc, cgroup v1 and v2) on
//! arbitrary bytes: the first byte picks the parser. A value or an error,
//! never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let parsers = vitals::collectors::kernel_file_parsers();
    let Some((&pick, input)) = data.split_first() else {
        return;
    };
    if let Some((_, parse)) = parsers.get(usize::from(pick) % parsers.len()) {
        let _ = parse(input);
    }
});
