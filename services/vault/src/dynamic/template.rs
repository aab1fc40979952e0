//! A configuration's role template, rendered for one new user: its `;`-separated statements,
//! `{{name}}` replaced by the user as the backend quotes it. Each backend runs them.

/// The template's statements for the user whose quoted name is `quoted`.
pub(super) fn statements(template: &str, quoted: &str) -> Vec<String> {
    template
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.replace("{{name}}", quoted))
        .collect()
}
