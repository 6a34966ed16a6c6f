"""PII surface forms by category (URL credentials, secrets, national IDs, ...): each value found, look-alikes kept."""

import pytest

from retune.pii import find_pii


def _found(text: str) -> list[tuple[str, str]]:
    return [(m.entity, text[m.start:m.end]) for m in find_pii(text)]


def _covered(text: str, value: str) -> bool:
    """Every letter and digit of value (at its first place in text) lies inside a detected span."""
    start = text.index(value)
    spans = [(m.start, m.end) for m in find_pii(text)]
    return all(any(s <= i < e for s, e in spans) for i in range(start, start + len(value)) if text[i].isalnum())


def _untouched(text: str, value: str) -> bool:
    start = text.index(value)
    return not any(m.start < start + len(value) and m.end > start for m in find_pii(text))


URL_CREDENTIALS = [  # (text, values that must be covered)
    ("Hier der Link: smb://jmeier:Sommer2024!@nas.local/share", ["jmeier", "Sommer2024!"]),
    ("voici le lien amqp://svc_app:tulp_73#X@mq.fabrikam.com:5672/vhost", ["svc_app", "tulp_73#X"]),
    ("DATABASE_URL=postgres://shop_rw:Fkuy%40hq84@db.internal:5432/orders", ["shop_rw", "Fkuy%40hq84"]),
    ("redis://:Q1w2e3r4t5y6u7i8o9p0@cache.prod.svc:6379/0", ["Q1w2e3r4t5y6u7i8o9p0"]),
    ("https://portal.northwind.eu/login/verify?t=PoUGDptFDfOOHPBoUu-E0EjMKb&utm_source=email", ["PoUGDptFDfOOHPBoUu"]),
    ("enlace: https://app.acme.com/reset-password?otp=bBIAIZqIDGWpJ7tBQi", ["bBIAIZqIDGWpJ7tBQi"]),
    ("il link https://login.acme.it/reset/A3PSmJv2AsLkZnCMKx5MktmUi ok?", ["A3PSmJv2AsLkZnCMKx5MktmUi"]),
    ("https://shop.acme.com/unsubscribe?email=ines.abreu%40sapo.pt&list=news", ["ines.abreu%40sapo.pt"]),
    ("zie https://portal.acme.nl/users/dagny.abreu/settings", ["dagny.abreu"]),
    ("https://app.acme.com/callback#access_token=7Qic9VHMRciTnfwL53WT40dVLk_gH2eu&state=xyz",
     ["7Qic9VHMRciTnfwL53WT40dVLk_gH2eu"]),
    ("https://drive.acme.com/file/d/1aBcD3fGh5JkL7mNoP9qRsTuVwXyZ012345/view", ["1aBcD3fGh5JkL7mNoP9qRsTuVwXyZ012345"]),
    ("https://example.com/account/password/reset/MjQ/c3z7xk-9d8f7e6c5b4a3928170a/", ["c3z7xk-9d8f7e6c5b4a3928170a"]),
    ("mein Profil: https://de.linkedin.com/in/max-mustermann-4711", ["max-mustermann-4711"]),
    ("https://twitter.com/janedoe/status/1", ["janedoe"]),
]


@pytest.mark.parametrize(("text", "values"), URL_CREDENTIALS)
def test_url_credentials_are_found(text, values):
    for value in values:
        assert _covered(text, value), (value, _found(text))


@pytest.mark.parametrize("text", [
    "see https://docs.northwind.eu/de/returns#refund for the return policy",
    "Status: https://status.acme.com/incidents/8821 (resolved)",
    "https://www.example.com/help?lang=fr&topic=shipping",
    "Mirror: ftp://mirror.example.org/pub/releases/4.2/",
    "https://github.com/acme/router/commit/4f7bb02e9c1d2a3b4c5d6e7f8a9b0c1d2e3f4a5b",
    "https://shop.acme.com/products/luna-pro-wireless-headset-black",
    "https://github.com/acme/router/issues/12",
    "https://x.com/intent/tweet?text=hello",
    "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
])
def test_public_urls_are_kept(text):
    assert [e for e, _ in _found(text)] == []


SECRETS = [
    ("minha senha: Hunter2014? — please reset it", "Hunter2014?"),
    ("mijn wachtwoord is Cnkrpnmv52@ sinds gisteren", "Cnkrpnmv52@"),
    ("la mia password è Pk67tFltGOp (temporanea)", "Pk67tFltGOp"),
    ("la clave es Tulp1978! gracias", "Tulp1978!"),
    ("mdp : Soleil1999# merci", "Soleil1999#"),
    ("palavra-passe: Uskcgsms14@", "Uskcgsms14@"),
    ("Authorization: Basic dmFsZMOtczgwOlNvbW1lcjIwMTEk", "dmFsZMOtczgwOlNvbW1lcjIwMTEk"),
    ("Ihr Bestätigungscode lautet 422969.", "422969"),
    ("votre code de vérification est 071585. Il expire dans 10 minutes.", "071585"),
    ("código de un solo uso: 43445603 - no lo compartas", "43445603"),
    ("il codice di verifica è 001766", "001766"),
    ("TAN: 574912", "574912"),
    ("de sleutel is SK555d04d9d43d42e8348c707b1573c6f7.", "SK555d04d9d43d42e8348c707b1573c6f7"),
    ("SENDGRID: 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", "SG.ngeVfQFYQlKU0ufo8x5d1A"),
    ("npm token npm_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8 leaked", "npm_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"),
    ("Passwort lautet: Fr3iheit#2024", "Fr3iheit#2024"),  # a verb and a colon
    ("contraseña actual: Mariposa_88", "Mariposa_88"),  # a word between the cue and its colon
    ("new password: Qwerty!234", "Qwerty!234"),
    ("La password del wifi è CasaMia2024", "CasaMia2024"),  # words between the cue and its verb
    ("SMS 14:02 Il tuo codice è 583920. Non condividerlo.", "583920"),
    ("SMS: Je code is 4821. Deel deze niet.", "4821"),
    ("DB pass is 'Sup3r$ecret'", "Sup3r$ecret"),
    ("PIN: 4829", "4829"),
    ("card 4111 1111 1111 1111 exp 12/27 cvv 123", "123"),
    ("Set-Cookie: session=3f2a9c8e7d6b5a4f3e2d1c0b9a8f7e6d; HttpOnly", "3f2a9c8e7d6b5a4f3e2d1c0b9a8f7e6d"),
]


@pytest.mark.parametrize(("text", "value"), SECRETS)
def test_secrets_after_cues_and_key_shapes_are_found(text, value):
    assert _covered(text, value), _found(text)


@pytest.mark.parametrize(("text", "value"), [
    ("pw reset done for ticket TCK-746047", "TCK-746047"),
    ("la clave del problema: TCK-11293", "TCK-11293"),
    ("tan leather case, order #5935204", "5935204"),
    ("code promo SUMMER2026 expired on 2026-09-16", "2026-09-16"),
    ("password reset: done, ticket TCK-11293", "TCK-11293"),
    ("Passwort lautet: unbekannt", "unbekannt"),
    ("your order code is 4821 and ships today", "4821"),
    ("the password I used is wrong, order 77410", "77410"),
    ("Password: (hidden) for ticket 48213", "hidden"),
    ("my boarding pass is ready, gate B12", "ready"),
    ("passengers12345 arrived", "passengers12345"),
    ("session=expired&retry=3", "expired"),
])
def test_secret_look_alikes_are_kept(text, value):
    assert _untouched(text, value), _found(text)


def test_a_phone_after_a_code_cue_is_a_phone_not_a_code():
    text = "the 2fa code never arrives on 0044 7700 900508, tried again"
    assert _found(text) == [("PHONE", "0044 7700 900508")]


def test_an_ssh_public_key_is_public():
    text = "deploy key: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHHGDirDvGot3jgZf8vXZbTkI3PRR3qm5QIC3jIxUKzk deploy@ci"
    assert _untouched(text, "AAAAC3NzaC1lZDI1NTE5AAAAIHHGDirDvGot3jgZf8vXZbTkI3PRR3qm5QIC3jIxUKzk")


NATIONAL_IDS = [  # valid checksums (generated independently of the engine)
    ("PESEL 93091263258 thanks", "93091263258"),
    ("nr PESEL: 80040769842", "80040769842"),
    ("Personnummer: 720204-2987, kund sedan 2018", "720204-2987"),
    ("personnummer 19900404-3460", "19900404-3460"),
    ("CPR-nummer: 170663-2405.", "170663-2405"),
    ("CPR nr. 080252-5516", "080252-5516"),
    ("social security number is 147541481.", "147541481"),
]


@pytest.mark.parametrize(("text", "value"), NATIONAL_IDS)
def test_national_ids_after_cues_are_found(text, value):
    assert _covered(text, value), _found(text)


@pytest.mark.parametrize(("text", "value"), [
    ("PESEL 93091263256 (a typo)", "93091263256"),  # checksum fails
    ("Personnummer: 720204-2988", "720204-2988"),  # Luhn fails
    ("CPR 451363-2405", "451363-2405"),  # no such day and month
    ("order 93091263258 shipped", "93091263258"),  # a valid PESEL shape, but no cue: an order number
])
def test_national_id_look_alikes_are_kept(text, value):
    assert _untouched(text, value), _found(text)


DATES_OF_BIRTH = [
    ("Data de nascimento\t21 de novembro de 1993\tOrder date\t01.07.2026", "21 de novembro de 1993"),
    ('{"id": 285310, "birthDate": "27-jui-41", "created": "2026-09-12"}', "27-jui-41"),
    ("DOB: 10-Jan-77 — thanks", "10-Jan-77"),
    ("Data nasc.: 20 out. 1965", "20 out. 1965"),
    ("Date of Birth - 7 mag. 1947", "7 mag. 1947"),
    ("birthday: 12 dic. 1987", "12 dic. 1987"),
    ("D.O.B. 19 DEZEMBRO 1944", "19 DEZEMBRO 1944"),
    ("nascida a 27-07-1945, em Lisboa", "27-07-1945"),
    ("Geboortedatum\t2/22/1940", "2/22/1940"),
    ("geboren op 4 maart 1980", "4 maart 1980"),
    ("Date of birth (DD/MM/YYYY): 14/03/1985", "14/03/1985"),
    ("<td>Geburtsdatum</td><td>14.03.1985</td>", "14.03.1985"),
    ("nacida el 14 de marzo del 1985", "14 de marzo del 1985"),
    ("nato il 3 giugno 1975", "3 giugno 1975"),
]


@pytest.mark.parametrize(("text", "value"), DATES_OF_BIRTH)
def test_birth_dates_in_seven_languages_are_found(text, value):
    assert _covered(text, value), _found(text)


@pytest.mark.parametrize(("text", "value"), [
    ("Bestelldatum 10-Jan-26, Lieferung 3 mag. 2026", "10-Jan-26"),  # dates without a birth cue
    ("data de envio: 20 out. 2026", "20 out. 2026"),
    ("geboren op de verkeerde dag? Order #5935204", "5935204"),
])
def test_dates_without_a_birth_cue_are_kept(text, value):
    assert _untouched(text, value), _found(text)


EMAILS = [
    ("write me: hendrikje.vandenbroek at outlook dot de; v5.1.78", "hendrikje.vandenbroek at outlook dot de"),
    ("schreib an jorunn.terhorst @ free . com bitte", "jorunn.terhorst @ free . com"),
    ("escríbeme a marisol arroba correo punto es", "marisol arroba correo punto es"),
    ('<a href="mailto:arjun@españa.es">mail</a>', "arjun@españa.es"),
    ("E-Mail: zbign@müller.de , ref ORD-2024-67519", "zbign@müller.de"),
]


@pytest.mark.parametrize(("text", "value"), EMAILS)
def test_spelled_out_and_international_addresses_are_found(text, value):
    assert _covered(text, value), _found(text)


@pytest.mark.parametrize(("text", "value"), [
    ("we meet at noon dot the office", "noon"),
    ("version 4 . 2 at build 7 . 1 ok", "build"),
    ("Ergebnis: 3 . 5 Punkte bei Test 2 . 0", "Test"),
])
def test_at_and_dot_in_prose_are_kept(text, value):
    assert _untouched(text, value), _found(text)


@pytest.mark.parametrize(("text", "value"), [
    ("2026-11-22 09:12:00 INFO sms.send to=+27711224091 status=delivered id=5929282429", "+27711224091"),
    ("2026-11-22 09:19:07 INFO sms.send to=912381713 status=delivered", "912381713"),
    ("event=call msisdn=4915123404933 dur=31s", "4915123404933"),
    ("Richiamatemi al 912 386 791 dopo le 17", "912 386 791"),
    ("bel me op 06 12345678 morgen", "06 12345678"),
])
def test_phones_in_log_fields_and_after_it_nl_pt_cues_are_found(text, value):
    assert _covered(text, value), _found(text)


@pytest.mark.parametrize(("text", "value"), [
    ("GET /api?order_id=0151234567&page=2", "0151234567"),
    ("status=delivered id=5929282429 retries=3", "5929282429"),
    ("trace_id=4915123404933 span=12", "4915123404933"),
])
def test_numbers_in_other_log_fields_are_kept(text, value):
    assert _untouched(text, value), _found(text)


ADDRESSES = [  # (text, the address as labelled)
    ('{"customer_id": 23456, "street": "Oude Gracht 182-II", "city": "5082 AB Utrecht"}', "Oude Gracht 182-II"),
    ('{"customer_id": 23456, "street": "Oude Gracht 182-II", "city": "5082 AB Utrecht"}', "5082 AB Utrecht"),
    ("Address: P.O. Box 603\nOrt: 41004 Valencia\n", "P.O. Box 603"),
    ("Adresse: Rue du Rhône 202\nLocalidade: 6900 Lugano\n", "6900 Lugano"),
    ("Lieferadresse: 49 OAK STREET, COLUMBUS, OH 93582 por favor", "49 OAK STREET, COLUMBUS, OH 93582"),
    ("Nos mudamos a Postfach 27542, 2000 Antwerpen. Gracias", "Postfach 27542, 2000 Antwerpen"),
    ("We zijn verhuisd naar 112 Clontarf Road, Cork T12 R2NX.", "112 Clontarf Road, Cork T12 R2NX"),
    ("abito in RONDA DE TOLEDO, 13, PISO 2, PUERTA 4, 08007 BARCELONA merci", "RONDA DE TOLEDO, 13, PISO 2, PUERTA 4, "
                                                                           "08007 BARCELONA"),
    ("Morada: Rua Augusta, 216, 3º Dto, 3105-310 Coimbra", "Rua Augusta, 216, 3º Dto, 3105-310 Coimbra"),
    ("Indirizzo: Grote Markt 142 bus 9\nVille: 2000 Antwerpen", "Grote Markt 142 bus 9"),
    ("spedire a Corso Vittorio Emanuele II, 62, 50123 Firenze (FI), thanks", "Corso Vittorio Emanuele II, 62, 50123 "
                                                                            "Firenze (FI)"),
    ("Cheers,\nDagny Berg\n146 George Street\nFitzroy VIC 3065\n", "146 George Street\nFitzroy VIC 3065"),
    ("Nous avons déménagé au 27 rue Saint-Denis, Montréal QC H3A 1B9. (ORD-2024-16107)", "27 rue Saint-Denis, "
                                                                                         "Montréal QC H3A 1B9"),
    ("Grazie,\nNuno Berg\nV.le dei Mille, 66\n50123 Firenze (FI)\n", "V.le dei Mille, 66\n50123 Firenze (FI)"),
]


@pytest.mark.parametrize(("text", "value"), ADDRESSES)
def test_addresses_after_cues_and_of_more_countries_are_found(text, value):
    assert _covered(text, value), _found(text)


@pytest.mark.parametrize(("text", "value"), [
    ("j'habite au 152 place Bellecour. Also: TV-4266-RD", "TV-4266-RD"),  # the next sentence is no address
    ("Lieferadresse: Lindenweg 16. see TV-8625-WH) please", "TV-8625-WH"),
    ("Please send it to 227 Oak Crescent before Monday.", "Monday"),
    ("Delivery address: 55 Willow Drive, Dublin D02 X285. Phone: none", "Phone"),
    ("ship to Germany in 3 days please", "Germany"),  # a sentence that only mentions a number
    ("City: Berlin, order 48213", "48213"),  # a town without a postcode: no address
    ("Order status: shipped, SKU A123-BLK, box 3 of 4", "SKU A123-BLK"),
    ("our BP 2026 roadmap is out", "roadmap"),
])
def test_words_around_cued_addresses_are_kept(text, value):
    assert _untouched(text, value), _found(text)


NAMES = [
    ("Kunde: XAVIER, Sunita\nHier der Link", "XAVIER, Sunita"),
    ("Kontoinhaber: SUNITA TER HORST, thanks", "SUNITA TER HORST"),
    ("Customer: QUINTERO, Ljubica\n", "QUINTERO, Ljubica"),
    ('{"first_name": "Wenceslas", "last_name": "van den Broek", "plan": "Oscar"}', "van den Broek"),
    ("Klant: thandeka oliveira, thanks", "thandeka oliveira"),
    ("Titular: sigrún dal bianco, thanks", "sigrún dal bianco"),
    ("O meu nome é OTTILIE NAKAMURA, thanks", "OTTILIE NAKAMURA"),
    ("Mijn naam is FILIPPA UCHENNA\n", "FILIPPA UCHENNA"),
    ("Mi chiamo maria luísa coelho, grazie", "maria luísa coelho"),
    ("Chamo-me zbigniew radovanović, obrigado", "zbigniew radovanović"),
    ("Cumprimentos,\nRadomír Bjørnstad\n763 Washington Drive", "Radomír Bjørnstad"),
    ("Met vriendelijke groet,\nYusra ter Horst\n", "Yusra ter Horst"),
    ("cc @ifeoma.quintero can you check?", "ifeoma.quintero"),
    ("Dear Mrs S. Oyelowo,\n", "S. Oyelowo"),
    ("Gentile Sig. X. Xavier,\n", "X. Xavier"),
]


@pytest.mark.parametrize(("text", "value"), NAMES)
def test_names_after_labels_intros_and_sign_offs_in_seven_languages_are_found(text, value):
    assert _covered(text, value), _found(text)


@pytest.mark.parametrize(("text", "value"), [
    ("[08:18:46] Customer: card number 5189, is that fine?", "card number"),  # a chat speaker's message
    ("Customer: premium plan since 2019", "premium"),
    ("Name: required", "required"),
    ("Client: Acme GmbH\n", "Acme GmbH"),
    ("This is Thomas Berg de Globex Inc. and my order is late", "Globex"),
    ("ich bin gerade unterwegs, sorry", "gerade unterwegs"),
    ("ping @support.team and @devops.oncall please", "support.team"),
    ("mail anna@example.com or visit https://u:pw@nas.local/x", "nas.local"),
])
def test_words_after_name_cues_that_are_no_names_are_kept(text, value):
    assert not any(m.entity == "NAME" and m.start < text.index(value) + len(value) and m.end > text.index(value)
                   for m in find_pii(text)), _found(text)



@pytest.mark.parametrize(("text", "entity", "value"), [
    ("| Nome | Telefone | Morada |\n|---|---|---|\n| Ana Souza | 912 345 678 | Rua X 1 |", "PHONE", "912 345 678"),
    ("| Naam | Geboortedatum | IBAN |\n| Pieter Jansen | 12-03-1985 | NL91ABNA0417164300 |", "DOB", "12-03-1985"),
    ("Indirizzo\tTelefono\nVia Po 3\t333 1234567", "PHONE", "333 1234567"),
])
def test_it_nl_pt_column_headers_name_their_cells(text, entity, value):
    assert (entity, value) in _found(text)


@pytest.mark.parametrize(("text", "value"), [
    ("Cheers,\nSaoirse Iwasaki\nGROTE MARKT 54 BUS 4\nB-9000 GENT\n", "GROTE MARKT 54 BUS 4\nB-9000 GENT"),
    ("Saludos,\nPia Berg\n211 main street\ndublin 9, d09 x2y4\n", "211 main street\ndublin 9, d09 x2y4"),
    ("Groetjes,\nEamon Berg\nUNIT 18/7 QUEEN TCE\nFITZROY VIC 3065\n", "UNIT 18/7 QUEEN TCE\nFITZROY VIC 3065"),
    ("Grüße\nPia Berg\nBERLINER STR. 176, WHG. 4\n51361 KÖLN\n", "BERLINER STR. 176, WHG. 4\n51361 KÖLN"),
])
def test_signature_address_blocks_in_any_case_are_found(text, value):
    assert _covered(text, value), _found(text)


@pytest.mark.parametrize(("text", "value"), [
    ("Order 48213 shipped 03.03.2026\n10115 Berlin warehouse", "48213"),
    ("Tel. 030 1234567\n10115 Berlin", "Tel"),
    ("Firmware 4.2 is out\n80331 München office closed today", "Firmware"),
])
def test_lines_above_a_postcode_that_are_no_street_are_kept(text, value):
    assert _untouched(text, value), _found(text)


@pytest.mark.parametrize(("text", "value"), [
    ("Buongiorno dott. Ferri,", "Ferri"),
    ("Geachte mevrouw Jansen,", "Jansen"),
    ("falei com a Ana Souza ontem", "Ana Souza"),
])
def test_titles_written_out_and_pt_conversation_cues_name_people(text, value):
    assert ("NAME", value) in _found(text)


@pytest.mark.parametrize("text", ["la signora è arrivata", "senhor, tudo bem?", "Signora, la chiamo domani"])
def test_titles_without_a_name_name_nobody(text):
    assert [e for e, _ in _found(text)] == []


@pytest.mark.parametrize(("text", "value"), [
    ("the Clara Smart Hub arrived broken", "Clara"),
    ("my Emma Buds are silent", "Emma"),
])
def test_products_named_like_people_are_kept(text, value):
    assert _untouched(text, value), _found(text)


def test_a_person_whose_family_name_is_a_product_word_is_still_named():
    assert ("NAME", "Clara Smart") in _found("My name is Clara Smart")
