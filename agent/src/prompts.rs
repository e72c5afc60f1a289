//! The prompts: Markdown files in `templates/prompts/`, compiled in, with `{{name}}`
//! placeholders filled by [`render`]. Edit the files, not the code.

use stage_api::StageKind;

macro_rules! prompts {
    ($($name:literal),* $(,)?) => {
        const PROMPTS: &[(&str, &str)] = &[
            $(($name, include_str!(concat!("../../templates/prompts/", $name, ".md"))),)*
        ];
    };
}

prompts!(
    "supervisor_system",
    "supervisor_plan",
    "supervisor_review",
    "coder_system",
    "coder_task",
    "coder_compile_error",
    "coder_policy",
    "coder_no_code",
    "coder_guidance",
    "held_out_failed",
    "contract/inspect",
    "contract/convert",
    "contract/select",
    "contract/histogram",
    "contract/fit",
    "contract/separate",
    "contract/categorize",
    "crates/oxyroot",
    "crates/forust-ml",
    "access_fs",
);

/// The prompt `name` with each `{{key}}` replaced, in one pass over the template (values are
/// never scanned: model code may well contain `{{`). Panics on an unknown name or a
/// placeholder without a value: both are bugs in this crate, caught by its tests.
pub fn render(name: &str, vars: &[(&str, &str)]) -> String {
    let template = PROMPTS
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no prompt template '{name}'"))
        .1;
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let end = after
            .find("}}")
            .unwrap_or_else(|| panic!("prompt '{name}': unclosed {{{{"));
        let key = &after[..end];
        let value = vars
            .iter()
            .find(|(k, _)| *k == key)
            .unwrap_or_else(|| panic!("prompt '{name}': no value for {{{{{key}}}}}"))
            .1;
        out.push_str(value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out.trim_end().to_string()
}

/// The stage contract shown for `kind`.
pub fn contract(kind: StageKind) -> String {
    render(&format!("contract/{}", kind.name()), &[])
}

#[cfg(test)]
mod tests {
    #[test]
    fn values_are_inserted_verbatim() {
        let code = "let s = format!(\"{{}} {{{{task}}}}\", 1);";
        let out = super::render(
            "coder_task",
            &[("task", code), ("contract", "{{contract}}")],
        );
        assert!(out.starts_with(code), "{out}");
        assert!(out.ends_with("{{contract}}"), "{out}");
    }
}
