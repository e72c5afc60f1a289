//! The runner of an agent-written stage (written by agent/src/stage_crate.rs from
//! templates/stage/main.rs; the model writes only src/stage.rs). Compiled with rustc against
//! the prebuilt `stage_api` crate and nothing else.
//!
//! Usage: `stage INPUT.json OUTPUT.json`. Exit codes: `stage_api::exit` (0: output written;
//! 2: the stage returned an error, printed; 64: bad usage; 66: unreadable input; 73:
//! unwritable output; 101: panic).

mod stage;

const _: () = assert!(
    stage_api::STAGE_API_VERSION == {{api_version}},
    "the stage was written against another version of the stage API"
);

fn main() -> std::process::ExitCode {
    use stage_api::exit;
    use std::process::ExitCode;
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let [_, input, output] = args.as_slice() else {
        eprintln!("usage: stage INPUT.json OUTPUT.json");
        return ExitCode::from(exit::USAGE);
    };
    let input = match std::fs::read_to_string(input) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("reading {}: {e}", input.to_string_lossy());
            return ExitCode::from(exit::NO_INPUT);
        }
    };
    match stage_api::json::{{stage}}(&stage::Stage, &input) {
        Ok(doc) => match std::fs::write(output, doc) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("writing {}: {e}", output.to_string_lossy());
                ExitCode::from(exit::CANT_WRITE)
            }
        },
        Err(e) => {
            eprintln!("stage error: {e}");
            ExitCode::from(exit::STAGE_ERROR)
        }
    }
}
