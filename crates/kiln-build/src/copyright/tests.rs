//! Copyright files as Debian writes them: DEP-5 declared, free text concluded, and every
//! expression valid SPDX with each `LicenseRef-` given a text.

use kiln_model::inventory::{LicenseKind, PackageLicense};

use super::*;

fn valid(found: &PackageLicense) {
    let parsed = spdx::Expression::parse(&found.expression);
    assert!(parsed.is_ok(), "{:?} is not SPDX: {parsed:?}", found.expression);
    for word in found.expression.split([' ', '(', ')']).filter(|w| w.starts_with("LicenseRef-")) {
        assert!(found.texts.iter().any(|t| t.id == word && !t.text.is_empty()), "{word} has no text: {found:?}");
    }
}

#[test]
fn dep5_is_declared_with_its_structure() {
    let text = "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n\
        Files: *\nLicense: GPL-2+\n\n\
        Files: lib/*\nLicense: Expat\n text\n\n\
        Files: perl/*\nLicense: GPL-1+ or Artistic, and BSD-3-clause\n\n\
        Files: debian/*\nLicense: public-domain\n\n\
        Files: m4/*\nLicense: GPL-3+ with Autoconf exception\n\n\
        License: Expat\n full text\n\n\
        License: public-domain\n The author places these files\n \n in the public domain.\n";
    let found = license_of(text).expect("a licence");
    assert_eq!(found.kind, LicenseKind::Declared);
    assert_eq!(
        found.expression,
        "BSD-3-Clause AND (GPL-1.0-or-later OR Artistic-1.0-Perl) AND GPL-2.0-or-later AND \
         GPL-3.0-or-later WITH Autoconf-exception-3.0 AND LicenseRef-public-domain AND MIT"
    );
    assert_eq!(found.texts.len(), 1);
    assert_eq!(found.texts[0].name, "public-domain");
    assert_eq!(found.texts[0].text, "The author places these files\n\nin the public domain.");
    valid(&found);
}

#[test]
fn dep5_lines_keep_and_over_or() {
    let mut refs = Vec::new();
    assert_eq!(
        dep5_expression("GPL-2+ or MIT and BSD-2-clause", &mut refs).as_deref(),
        Some("GPL-2.0-or-later OR MIT AND BSD-2-Clause")
    );
    assert_eq!(dep5_expression("GPL-2+, or MIT", &mut refs).as_deref(), Some("GPL-2.0-or-later OR MIT"));
    assert_eq!(
        dep5_expression("GPL-2+ or LGPL-2.1+,", &mut refs).as_deref(),
        Some("GPL-2.0-or-later OR LGPL-2.1-or-later")
    );
    assert_eq!(dep5_expression(" , or and ", &mut refs), None);
    assert_eq!(join_and(vec!["(MIT) OR ISC".into(), "Zlib".into()]).as_deref(), Some("((MIT) OR ISC) AND Zlib"));
    let parts = vec!["MIT AND (ISC OR Zlib)".into(), "(ISC OR Zlib) AND MIT AND MIT".into(), "(MIT)".into()];
    assert_eq!(join_and(parts).as_deref(), Some("(ISC OR Zlib) AND MIT"));
    assert!(refs.is_empty(), "{refs:?}");
}

#[test]
fn a_licence_without_text_says_so() {
    let text = "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n\
        Files: *\nLicense: Unicode-whatever\n";
    let found = license_of(text).expect("a licence");
    assert_eq!(found.expression, "LicenseRef-Unicode-whatever");
    assert!(found.texts[0].text.contains("without giving its text"), "{found:?}");
    valid(&found);
}

#[test]
fn free_text_is_concluded() {
    // base-files: GPL-2+ in prose, and a pointer to the unversioned GPL file.
    let base_files = "Copyright (C) 1995-2011 Software in the Public Interest.\n\n\
        This program is free software; you can redistribute it and/or modify\n\
        it under the terms of the GNU General Public License as published by\n\
        the Free Software Foundation; either version 2 of the License, or\n\
        (at your option) any later version.\n\n\
        On Debian systems, the complete text of the GNU General\n\
        Public License can be found in `/usr/share/common-licenses/GPL'.\n";
    let found = license_of(base_files).expect("a licence");
    assert_eq!((found.expression.as_str(), found.kind), ("GPL-2.0-or-later", LicenseKind::Concluded));
    // libc6: LGPL-2.1+ and GPL-2+, BSD notices, ISC.
    let libc = "    modify it under the terms of the GNU Lesser General Public\n    License as published by the Free Software Foundation; either\n    \
        version 2.1 of the License, or (at your option) any later version.\n\n\
        General Public License can be found in `/usr/share/common-licenses/LGPL-2.1'.\n\n\
        it under the terms of the GNU General Public License as published\n by the Free Software Foundation; either version 2 of the License, or\n (at your option) any later version.\n\n\
        Redistribution and use in source and binary forms, with or without\n modification, are permitted provided that ...\n \
        3. Neither the name of the University nor the names of its contributors\n may be used to endorse or promote products\n\n\
        Permission to use, copy, modify, and distribute this software for any\n purpose with or without fee is hereby granted, provided that\n";
    let found = license_of(libc).expect("a licence");
    assert_eq!(found.expression, "BSD-3-Clause AND GPL-2.0-or-later AND ISC AND LGPL-2.1-or-later");
    // c-ares: MIT, ISC, a public-domain file, the packaging under "the GPL".
    let cares = "The project in general is under the MIT License:\n\n\
        Permission is hereby granted, free of charge, to any person\nobtaining a copy of this software\n\n\
        The file mkinstalldirs is in the Public domain.\n\n\
        The Debian packaging is licensed under the GPL, see `/usr/share/common-licenses/GPL'.\n";
    let found = license_of(cares).expect("a licence");
    assert_eq!(found.expression, "GPL-1.0-or-later AND LicenseRef-public-domain AND MIT");
    assert_eq!(found.texts[0].text, "The file mkinstalldirs is in the Public domain.");
    valid(&found);
    // Python: the whole licence stack.
    let python = "PYTHON SOFTWARE FOUNDATION LICENSE VERSION 2\n\nBEOPEN.COM LICENSE AGREEMENT FOR PYTHON 2.0\n\nCNRI LICENSE AGREEMENT FOR PYTHON 1.6.1\n";
    assert_eq!(license_of(python).map(|l| l.expression).as_deref(), Some("Python-2.0"));
    // Short forms, a pointer alone, the GCC runtime exception, a License: line.
    let short = "The library is LGPLv2.1+, the tools GPLv3+.\n";
    assert_eq!(license_of(short).map(|l| l.expression).as_deref(), Some("GPL-3.0-or-later AND LGPL-2.1-or-later"));
    let pointer = "see /usr/share/common-licenses/GPL-2 and /usr/share/common-licenses/Apache-2.0.\n";
    assert_eq!(license_of(pointer).map(|l| l.expression).as_deref(), Some("Apache-2.0 AND GPL-2.0-only"));
    let gcc = "GCC RUNTIME LIBRARY EXCEPTION\n\nGNU General Public License, version 3 or later\n";
    assert_eq!(
        license_of(gcc).map(|l| l.expression).as_deref(),
        Some("GPL-3.0-or-later AND GPL-3.0-or-later WITH GCC-exception-3.1")
    );
    let line = "Files: whatever\nLicense: Apache-2.0\n";
    assert_eq!(license_of(line).map(|l| l.expression).as_deref(), Some("Apache-2.0"));
    // No licence named: nothing concluded.
    assert_eq!(license_of("This package was debianized by someone. The GPL-compatible licences…"), None);
}

#[test]
fn machine_copyright_files_give_valid_spdx() {
    let mut read = 0;
    for entry in std::fs::read_dir("/usr/share/doc").expect("/usr/share/doc").flatten() {
        if let Ok(text) = std::fs::read_to_string(entry.path().join("copyright"))
            && let Some(found) = license_of(&text)
        {
            valid(&found);
            read += 1;
        }
    }
    assert!(read > 10, "only {read} copyright files gave a licence");
}
