//! Organizations a leak scan lists the repositories of: a GitHub organization or a GitLab
//! group, named as its host spells it.

/// A GitHub organization or a GitLab group (by its full path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    pub host: Host,
    pub name: String,
}

/// A git hosting service whose API lists an organization's repositories.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host {
    Github,
    Gitlab,
}

impl Host {
    pub fn as_str(self) -> &'static str {
        match self {
            Host::Github => "github",
            Host::Gitlab => "gitlab",
        }
    }

    pub fn parse(s: &str) -> Option<Host> {
        match s {
            "github" => Some(Host::Github),
            "gitlab" => Some(Host::Gitlab),
            _ => None,
        }
    }

    /// Whether `name` is an organization this host could have: a GitHub login (letters,
    /// digits, inner hyphens, at most 39) or a GitLab group's full path (segments of
    /// letters, digits, `-`, `_`, `.`, joined by `/`).
    pub fn valid_name(self, name: &str) -> bool {
        match self {
            Host::Github => {
                (1..=39).contains(&name.len())
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    && !name.starts_with('-')
                    && !name.ends_with('-')
            }
            Host::Gitlab => {
                (1..=255).contains(&name.len())
                    && name.split('/').all(|seg| {
                        !seg.is_empty()
                            && !seg.starts_with('.')
                            && seg
                                .chars()
                                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                    })
            }
        }
    }
}

impl std::fmt::Display for Organization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} organization `{}`", self.host.as_str(), self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_as_each_host_spells_them() {
        assert!(Host::Github.valid_name("acme-corp"));
        assert!(!Host::Github.valid_name("acme/corp"), "no groups on GitHub");
        assert!(!Host::Github.valid_name("-acme"));
        assert!(!Host::Github.valid_name(&"a".repeat(40)));
        assert!(Host::Gitlab.valid_name("platform/infra.team_1"));
        assert!(!Host::Gitlab.valid_name("platform//infra"));
        assert!(!Host::Gitlab.valid_name("platform/../admin"));
        assert!(!Host::Gitlab.valid_name("a b"));
        assert_eq!(Host::parse("gitlab"), Some(Host::Gitlab));
        assert_eq!(Host::parse("s3"), None);
    }
}
