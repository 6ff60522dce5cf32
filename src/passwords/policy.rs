//! The rules a new password must meet: long enough, not too long, not one of
//! the passwords attackers try first, and not made of the account's own name.
//! No composition rules (NIST SP 800-63B).

use std::{collections::HashSet, sync::LazyLock};

pub const MAX_PASSWORD_LENGTH: usize = 128;

/// About 18,000 commonly used passwords of eight characters or more (no
/// policy allows shorter): the xato-net list that zxcvbn ships
/// (@zxcvbn-ts/language-common 4.1.3, MIT), lowered, with the passwords
/// this project listed before.
const COMMON_PASSWORDS: &str = include_str!("common-passwords.txt");

static COMMON: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    COMMON_PASSWORDS
        .lines()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect()
});

#[derive(Clone, Copy, Debug)]
pub struct PasswordPolicy {
    pub min_length: usize,
}

/// Checks `password` for the account `username` / `email`; the error says
/// which rule failed.
pub fn check_password(
    policy: PasswordPolicy,
    password: &str,
    username: &str,
    email: &str,
) -> Result<(), String> {
    let length = password.chars().count();
    if length < policy.min_length {
        return Err(format!(
            "must be at least {} characters long (it has {length})",
            policy.min_length
        ));
    }
    if length > MAX_PASSWORD_LENGTH {
        return Err(format!("must be at most {MAX_PASSWORD_LENGTH} characters long"));
    }
    let lowered = password.to_lowercase();
    if is_common(&lowered) {
        return Err("is one of the most commonly used passwords; choose another".into());
    }
    let local_part = email.split('@').next().unwrap_or_default().to_lowercase();
    for (name, what) in [
        (username.to_lowercase(), "username"),
        (email.to_lowercase(), "email address"),
        (local_part, "email address"),
    ] {
        if name.chars().count() >= 3 && lowered.contains(&name) {
            return Err(format!("must not contain your {what}"));
        }
    }
    Ok(())
}

fn is_common(lowered: &str) -> bool {
    COMMON.contains(lowered)
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: PasswordPolicy = PasswordPolicy { min_length: 12 };

    #[test]
    fn each_rule_has_its_own_message() {
        let check = |p: &str| check_password(POLICY, p, "jdoe", "jane.doe@example.com");
        assert!(check("short").err().is_some_and(|e| e.contains("at least 12")));
        assert!(
            check(&"x".repeat(129))
                .err()
                .is_some_and(|e| e.contains("at most 128"))
        );
        assert!(
            check("Password1234")
                .err()
                .is_some_and(|e| e.contains("commonly used"))
        );
        assert!(
            check("my-jdoe-is-great")
                .err()
                .is_some_and(|e| e.contains("username"))
        );
        assert!(
            check("jane.doe-forever!")
                .err()
                .is_some_and(|e| e.contains("email"))
        );
        assert_eq!(check("plum tractor velvet"), Ok(()));
    }

    #[test]
    fn the_common_list_is_of_real_size_and_matches_in_any_case() {
        assert!(COMMON.len() > 15_000, "{} passwords", COMMON.len());
        for password in ["iloveyou1", "Qwertyuiop", "PASSWORD1234", "trustno1"] {
            assert!(is_common(&password.to_lowercase()), "{password}");
        }
        assert!(!is_common("plum tractor velvet"));
    }
}
