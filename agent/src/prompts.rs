//! The prompts: Markdown files in `templates/prompts/`, compiled in, with `{{name}}`
//! placeholders filled by [`render`]. Edit the files, not the code.

use crate::stage_crate::StageKind;

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
    "contract/select",
    "contract/histogram",
    "contract/fit",
);

/// The prompt `name` with each `{{key}}` replaced. Panics on an unknown name or a placeholder
/// left unfilled: both are bugs in this crate, caught by its tests.
pub fn render(name: &str, vars: &[(&str, &str)]) -> String {
    let template = PROMPTS
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no prompt template '{name}'"))
        .1;
    let mut out = template.to_string();
    for (k, v) in vars {
        out = out.replace(&format!("{{{{{k}}}}}"), v);
    }
    if let Some(i) = out.find("{{") {
        let rest: String = out[i..].chars().take(30).collect();
        panic!("prompt '{name}': unfilled placeholder at {rest:?}");
    }
    out.trim_end().to_string()
}

/// The stage contract shown for `kind`.
pub fn contract(kind: StageKind) -> String {
    render(&format!("contract/{}", kind.name()), &[])
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_contract_names_the_current_api_version() {
        for kind in ["select", "histogram", "fit"] {
            let c = super::render(&format!("contract/{kind}"), &[]);
            let v = format!("Stage API version {}", analysis::stage::STAGE_API_VERSION);
            assert!(
                c.starts_with(&v),
                "contract/{kind}.md is written for another API version"
            );
        }
    }
}
