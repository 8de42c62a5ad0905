//! Phone normalisation: the one place a phone number is turned into E.164 digits.

/// Normalises a human-written phone to E.164 digits without the plus (`"+1 (555) 010-0111"` →
/// `"15550100111"`). `00` international prefixes are accepted. `None` when it is not a phone.
pub fn normalize(raw: &str) -> Option<String> {
    let trimmed = raw.trim();
    let rest = trimmed.strip_prefix('+').unwrap_or(trimmed);
    let mut digits = String::with_capacity(rest.len());
    for ch in rest.chars() {
        match ch {
            '0'..='9' => digits.push(ch),
            ' ' | '-' | '(' | ')' | '.' | '\u{a0}' => {}
            _ => return None,
        }
    }
    if !trimmed.starts_with('+')
        && let Some(d) = digits.strip_prefix("00")
    {
        digits = d.to_owned();
    }
    let ok = (8..=15).contains(&digits.len()) && !digits.starts_with('0');
    ok.then_some(digits)
}

/// ISO 3166 alpha-2 country of an E.164 number, from its calling code (longest prefix wins).
pub fn country(digits: &str) -> Option<&'static str> {
    const CODES: &[(&str, &str)] = &[
        ("1", "US"),
        ("7", "RU"),
        ("20", "EG"),
        ("27", "ZA"),
        ("30", "GR"),
        ("31", "NL"),
        ("32", "BE"),
        ("33", "FR"),
        ("34", "ES"),
        ("36", "HU"),
        ("39", "IT"),
        ("40", "RO"),
        ("41", "CH"),
        ("43", "AT"),
        ("44", "GB"),
        ("45", "DK"),
        ("46", "SE"),
        ("47", "NO"),
        ("48", "PL"),
        ("49", "DE"),
        ("51", "PE"),
        ("52", "MX"),
        ("53", "CU"),
        ("54", "AR"),
        ("55", "BR"),
        ("56", "CL"),
        ("57", "CO"),
        ("58", "VE"),
        ("60", "MY"),
        ("61", "AU"),
        ("62", "ID"),
        ("63", "PH"),
        ("64", "NZ"),
        ("65", "SG"),
        ("66", "TH"),
        ("81", "JP"),
        ("82", "KR"),
        ("84", "VN"),
        ("86", "CN"),
        ("90", "TR"),
        ("91", "IN"),
        ("92", "PK"),
        ("93", "AF"),
        ("94", "LK"),
        ("95", "MM"),
        ("98", "IR"),
        ("212", "MA"),
        ("213", "DZ"),
        ("216", "TN"),
        ("218", "LY"),
        ("220", "GM"),
        ("221", "SN"),
        ("225", "CI"),
        ("233", "GH"),
        ("234", "NG"),
        ("237", "CM"),
        ("244", "AO"),
        ("249", "SD"),
        ("250", "RW"),
        ("251", "ET"),
        ("252", "SO"),
        ("254", "KE"),
        ("255", "TZ"),
        ("256", "UG"),
        ("260", "ZM"),
        ("263", "ZW"),
        ("351", "PT"),
        ("352", "LU"),
        ("353", "IE"),
        ("354", "IS"),
        ("358", "FI"),
        ("359", "BG"),
        ("370", "LT"),
        ("371", "LV"),
        ("372", "EE"),
        ("380", "UA"),
        ("381", "RS"),
        ("385", "HR"),
        ("386", "SI"),
        ("420", "CZ"),
        ("421", "SK"),
        ("502", "GT"),
        ("503", "SV"),
        ("504", "HN"),
        ("505", "NI"),
        ("506", "CR"),
        ("507", "PA"),
        ("591", "BO"),
        ("593", "EC"),
        ("595", "PY"),
        ("598", "UY"),
        ("852", "HK"),
        ("880", "BD"),
        ("886", "TW"),
        ("961", "LB"),
        ("962", "JO"),
        ("963", "SY"),
        ("964", "IQ"),
        ("965", "KW"),
        ("966", "SA"),
        ("968", "OM"),
        ("970", "PS"),
        ("971", "AE"),
        ("972", "IL"),
        ("973", "BH"),
        ("974", "QA"),
        ("977", "NP"),
    ];
    (1..=3).rev().filter_map(|n| digits.get(..n)).find_map(|p| CODES.iter().find(|(c, _)| *c == p).map(|(_, iso)| *iso))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_common_spellings() {
        assert_eq!(normalize("+1 (555) 010-0111").as_deref(), Some("15550100111"));
        assert_eq!(normalize("0044 20 7946 0958").as_deref(), Some("442079460958"));
        assert_eq!(normalize("15550100111").as_deref(), Some("15550100111"));
        assert_eq!(normalize("not a phone"), None);
        assert_eq!(normalize("+12"), None);
        assert_eq!(normalize("0123456789"), None);
    }

    #[test]
    fn countries_by_longest_prefix() {
        assert_eq!(country("15550100111"), Some("US"));
        assert_eq!(country("233201234567"), Some("GH"));
        assert_eq!(country("447911123456"), Some("GB"));
        assert_eq!(country("999"), None);
    }
}
