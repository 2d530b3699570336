import Foundation

// Test vectors made ONCE by independent tools (OpenSSL 3.0, micromdm scepserver/scepclient 2.1.0)
// and pasted here; the tests never regenerate them. How each was made:
//
// OpenSSL vectors: throwaway RSA-2048 test keys (swift-crypto refuses smaller RSA keys);
// content.txt is the 10 bytes "hello SCEP".
//   openssl req -x509 -newkey rsa:2048 -nodes -keyout signer.key -out signer.pem \
//     -subj "/O=enroll-agent tests/CN=Fixture Signer" -days 3650 -set_serial 0x8F01020304
//   openssl req -x509 -newkey rsa:2048 -nodes -keyout recip.key -out recip.pem \
//     -subj "/O=enroll-agent tests/CN=Fixture Recipient" -days 3650 -set_serial 7
//   openssl cms -sign -nodetach -binary -md sha256 -nosmimecap [-keyid] [-stream] \
//     -signer signer.pem -inkey signer.key -in content.txt -outform DER
//   openssl cms -encrypt -binary -aes128 [-keyid] [-stream] -in content.txt -outform DER recip.pem
//   openssl cms -cmsout -inform DER -in X-stream.ber -outform DER   (the DER twin of a -stream BER)
//   Sub-structures are TLVs sliced out byte for byte (the path of child indexes, as
//   `openssl asn1parse -inform DER -i` shows the tree, is noted on each constant).
//   openssl asn1parse -genconf FILE -out X.der  for IssuerAndSubject, the SCEP attribute and the
//   AES AlgorithmIdentifier (the genconf text is quoted on each constant).
//   openssl enc -aes-128-cbc|-aes-256-cbc|-des-ede3-cbc|-des-cbc (legacy provider) -K .. -iv .. for
//   the cipher vectors.
//
// scepserver capture (see `ScepServerCapture`): a real exchange on 127.0.0.1 in a private network
// namespace (unshare -rn), bodies recorded by a small forwarding proxy on port 8081:
//   scepserver ca -init -depot depot -keySize 2048 -organization "Test CA" -years 1
//   scepserver -depot depot -port 8080 -challenge fixture-challenge -allowrenew 0
//   scepclient -server-url http://127.0.0.1:8081/scep -challenge fixture-challenge \
//     -private-key k.key -certificate c.pem -cn fixture-client -keySize 2048

enum Fixtures {
    /// Decodes a base64 test constant; an empty result makes every test using it fail loudly.
    static func bytes(base64 text: String) -> [UInt8] {
        Array(Data(base64Encoded: text, options: .ignoreUnknownCharacters) ?? Data())
    }

    /// Decodes a hex test constant (ignores anything that is not a hex digit pair).
    static func hex(_ text: String) -> [UInt8] {
        let digits = Array(text.utf8).compactMap { byte -> UInt8? in
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
            default: return nil
            }
        }
        return stride(from: 0, to: digits.count - 1, by: 2).map { digits[$0] << 4 | digits[$0 + 1] }
    }
}

/// Vectors made with `openssl cms` (see the file header).
enum OpenSSLVectors {
    /// The signer's self-signed certificate (serial 0x8F01020304: DER INTEGER 00 8F 01 02 03 04).
    static let signerCertificatePEM = """
        -----BEGIN CERTIFICATE-----
        MIIDPzCCAiegAwIBAgIGAI8BAgMEMA0GCSqGSIb3DQEBCwUAMDYxGzAZBgNVBAoM
        EmVucm9sbC1hZ2VudCB0ZXN0czEXMBUGA1UEAwwORml4dHVyZSBTaWduZXIwHhcN
        MjYxMTIzMDM0MjMxWhcNMzYxMTIwMDM0MjMxWjA2MRswGQYDVQQKDBJlbnJvbGwt
        YWdlbnQgdGVzdHMxFzAVBgNVBAMMDkZpeHR1cmUgU2lnbmVyMIIBIjANBgkqhkiG
        9w0BAQEFAAOCAQ8AMIIBCgKCAQEAx8BnlJHmSOM4xLFwZ6JP1MuEhq3o9lhjbwZl
        EOy2IkWTf6ts2TFMK+x0TGfvoi2nxFIBbZv5btKJzThvsGmRvnFlQIa1J0fID6/b
        FYFrXPpi6mACzoTgiPKzQiwX3BB3N9foafqN83jS1nwaPd7XIej06IY+TaK3mrbb
        SK+pR2jlogYm9qFEKT5dj6tewBV9bp/QaJzKFXiecKWqzbB/R3hHReMYkfn/aVTS
        xA+pCJNWVDRDsjz094GUe0ZcdKrU+siWHIuh+sit9gVLpY+qBqNJzy9/iV/Fk1oo
        duiPa3D5maRj+ZpSi0t4RgyWdnCTCnT7ZlSAchw87I8vQIKRlQIDAQABo1MwUTAd
        BgNVHQ4EFgQUI3zy19Dqa8N5Fxn6EOuXGfdkbNUwHwYDVR0jBBgwFoAUI3zy19Dq
        a8N5Fxn6EOuXGfdkbNUwDwYDVR0TAQH/BAUwAwEB/zANBgkqhkiG9w0BAQsFAAOC
        AQEANYd0xgC1kIHGKWPINrezL7CI7UKluX9DzNYSjbp0PCrNLTz/f5doRixTPaCS
        ernRObeqV1qHN4y55UDMGMa0YPQ/VqPzRy1pHDk0Wbc1fX2uEl3ItXPnQ68RyAWG
        fJNy/zKAUKDfPJUK1BpwAAbOOtXUGLPXbRU4pn9Ulu8C/AO8dksGmJaWEXNMIN9d
        joQrFw7YkvI2uwdsjPwpCjC+MD2+AqXsHZvkMPn126lBv3OD4Jyw24L0H/hDaozU
        A3x2a5eXL1Qw1niHgJNZR407LbqxPaWtr3sIQaA1clSBH9480RhGipmwsIiaqDnt
        z5vSPoFcndnfSyJfc/YL730n9A==
        -----END CERTIFICATE-----
        """
    /// The recipient's self-signed certificate (serial 7).
    static let recipientCertificatePEM = """
        -----BEGIN CERTIFICATE-----
        MIIDQDCCAiigAwIBAgIBBzANBgkqhkiG9w0BAQsFADA5MRswGQYDVQQKDBJlbnJv
        bGwtYWdlbnQgdGVzdHMxGjAYBgNVBAMMEUZpeHR1cmUgUmVjaXBpZW50MB4XDTI2
        MTEyMzAzNDIzMVoXDTM2MTEyMDAzNDIzMVowOTEbMBkGA1UECgwSZW5yb2xsLWFn
        ZW50IHRlc3RzMRowGAYDVQQDDBFGaXh0dXJlIFJlY2lwaWVudDCCASIwDQYJKoZI
        hvcNAQEBBQADggEPADCCAQoCggEBALIGEvPNsMfe/nL5yZylrSN2dBD9S/3HMYak
        zW4CxUcVf4q33uHbmupOEs1YjlSNjQNosYAaL3v3qsBMAQAEHP524uh4TMuye+h+
        bRDhB2oFoCnROT0FF3TQtPURo20R/5FAV7LyBs7Bqu0bpJ45P14lCkZzpJxavpa+
        oRmcv9E/lmjY/WfkQwZovyoNaG0niyi4rurNVAfYYJnhiIphDFh3jLG5b72OCm4z
        8jA0Nl1mph+sdxwerLYB2I6ytGb5BZVhp57Q3JCJcLy7fu2ujH5yixS/GNccW9Gr
        7uPI82pKpDLS2ALAwyk9KEaq34TCj9HNuCdBKxUXc4OhyYYJoLsCAwEAAaNTMFEw
        HQYDVR0OBBYEFClyRVRagmQc8Np+3kipCTAV0852MB8GA1UdIwQYMBaAFClyRVRa
        gmQc8Np+3kipCTAV0852MA8GA1UdEwEB/wQFMAMBAf8wDQYJKoZIhvcNAQELBQAD
        ggEBAE4eKIwhl6K+chk58qrduPmW9zPpaTA7oqv92hsgdePb9tbyzk2lJMtaAwEu
        FUvVntvXs9pXY4loG+eHIOwZMkiTZ2uTVh3BCpXYXCJSdic9CIlmhWfXRcuJsHjG
        Kf0dtZNRyv/ogI+FsJ5AgMV6mUJmTU+VBoX2Rkd1xTseWeqotwWDzVqNGFtvRrTy
        4htqE+cOcKBWmhfr0BlfSPWxQ5/u6deiuiuYZ+dBkRQgqpQWG93dcaKNBH2ec7OW
        W08rsCuo5CpiGBlkuj3gH02VYQQppbHM+ZzLL1wTpuCr2FDeE3LaFz6SVA+DYJih
        dzHgv/VqydAjXn4d6AErGws+rx8=
        -----END CERTIFICATE-----
        """
    /// The recipient's throwaway PKCS#8 test key, to open the envelopes below.
    static let recipientKeyPEM = """
        -----BEGIN PRIVATE KEY-----
        MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCyBhLzzbDH3v5y
        +cmcpa0jdnQQ/Uv9xzGGpM1uAsVHFX+Kt97h25rqThLNWI5UjY0DaLGAGi9796rA
        TAEABBz+duLoeEzLsnvofm0Q4QdqBaAp0Tk9BRd00LT1EaNtEf+RQFey8gbOwart
        G6SeOT9eJQpGc6ScWr6WvqEZnL/RP5Zo2P1n5EMGaL8qDWhtJ4souK7qzVQH2GCZ
        4YiKYQxYd4yxuW+9jgpuM/IwNDZdZqYfrHccHqy2AdiOsrRm+QWVYaee0NyQiXC8
        u37trox+cosUvxjXHFvRq+7jyPNqSqQy0tgCwMMpPShGqt+Ewo/RzbgnQSsVF3OD
        ocmGCaC7AgMBAAECggEAOUZlAJVzw8pFuP4OVFylSJyKmRC1Sy+0CmqpQTSY/da3
        0wx3I9lAjROTTwenuyJTdP5Q5TMHhe3XvMh3Jecs4N2lAT/7DSoeXV2Xf2+2r/Ch
        Z/LNZIln04h2P8Zt+uBohfXagVMGx6xdbq2PF+y5K3PlS2dXVYqIeP1Z3WCmAg7W
        0/PKZo3nZ7bPd4zU9LKpCcpUopo/CsGJoftmvAHpcCxhIywrMjD5YCq/qJgt3H+7
        Ix2fTtmvwJHg9Qo39WuAYr5WzjNtDH1x3lX4kN1oRXkMsaATU+pCKPhfWXmRO4s6
        K3FSBE+e6Z5AabBiNjxnnG3z0SzKBrcYK+D1QvdqSQKBgQDZnUUe6zAD1JpG0z+c
        ic6i6BTVQ6Zrti39LVzFeCvwIL5NMuyt+/K4VhhKsAezSd8KZu+qtAT6bYPiuOHZ
        JRkgff8J8Su6thvtwVuPBB7Xqkl3uBOGU8iuIHy1z4p/X6eLL3Mpdrob9RJ0cYUC
        gHi6uoBtCvrFPKCmssLx4v2lnQKBgQDRbQaKKVBP4aJ61ff1B1OkHzwY7BeHW7lE
        2IDRyykiKneuWeLvQfNf+FIMscwnIkY1FKZ6QK1y+aN4ehkcDEC8jGgfFhHhDlNz
        tfb24iroSQE2r2E4KEWbE6HPGWewVYTuEsNVEeBeaeDJIRUPmidN5jhGFReUEtmr
        Fm01u698NwKBgQCap5qoDp1hG4dJLnjW11lzjVzA9AMiKacld0enT3Bqh9q3Iqny
        PEyTlRxOeCwAz08kJWPO/YFMOOiyCJL5r9Pbs6+9cRiS6TmQDwry6QrCWtM7siau
        IH1OwufejlDvlRuNX3uIzEgX9mPXPZY54PPsQP9kf5kY8614yzKglaGOQQKBgCC4
        FuB5CeohB2CHk2C9z0yB8MK4CAkGxJBD/wRH6FpFJkOgGXtl418oDbGcCZhHm45p
        doT9G9wtsmN9N/UQ2QBcM1w/93Ug5traIAZ8WVXHKiBgECFU8WMEEzCm+HMtOUJ0
        vf3JeDNn+U2TFJZGcEOUZ1BTtUZWF5nKPC+77fPLAoGAU4q1+u85bcoITUFNcncF
        9ZX+XqPREt5dCFJc1dGAdxvydgRrmG4PsDVfXJ2kdIOD/qWXM/FmlrnIeKs2y88L
        OJb/mkR4o9bZGG0rVpRnSelFhBWGS5d25Gym8LURu8e0H45XXIYl4ceqP2ZQEYUV
        az6l5QiqkDMEFFC4WMn74Zo=
        -----END PRIVATE KEY-----
        """
    /// `openssl cms -sign` (issuerAndSerialNumber signer, SHA-256, signed attributes contentType, signingTime, messageDigest): ContentInfo.
    static let signedDataContentInfo = Fixtures.bytes(base64: """
        MIIFXwYJKoZIhvcNAQcCoIIFUDCCBUwCAQExDTALBglghkgBZQMEAgEwGQYJKoZIhvcNAQcBoAwECmhlbGxvIFNDRVCgggNDMIID
        PzCCAiegAwIBAgIGAI8BAgMEMA0GCSqGSIb3DQEBCwUAMDYxGzAZBgNVBAoMEmVucm9sbC1hZ2VudCB0ZXN0czEXMBUGA1UEAwwO
        Rml4dHVyZSBTaWduZXIwHhcNMjYxMTIzMDM0MjMxWhcNMzYxMTIwMDM0MjMxWjA2MRswGQYDVQQKDBJlbnJvbGwtYWdlbnQgdGVz
        dHMxFzAVBgNVBAMMDkZpeHR1cmUgU2lnbmVyMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAx8BnlJHmSOM4xLFwZ6JP
        1MuEhq3o9lhjbwZlEOy2IkWTf6ts2TFMK+x0TGfvoi2nxFIBbZv5btKJzThvsGmRvnFlQIa1J0fID6/bFYFrXPpi6mACzoTgiPKz
        QiwX3BB3N9foafqN83jS1nwaPd7XIej06IY+TaK3mrbbSK+pR2jlogYm9qFEKT5dj6tewBV9bp/QaJzKFXiecKWqzbB/R3hHReMY
        kfn/aVTSxA+pCJNWVDRDsjz094GUe0ZcdKrU+siWHIuh+sit9gVLpY+qBqNJzy9/iV/Fk1ooduiPa3D5maRj+ZpSi0t4RgyWdnCT
        CnT7ZlSAchw87I8vQIKRlQIDAQABo1MwUTAdBgNVHQ4EFgQUI3zy19Dqa8N5Fxn6EOuXGfdkbNUwHwYDVR0jBBgwFoAUI3zy19Dq
        a8N5Fxn6EOuXGfdkbNUwDwYDVR0TAQH/BAUwAwEB/zANBgkqhkiG9w0BAQsFAAOCAQEANYd0xgC1kIHGKWPINrezL7CI7UKluX9D
        zNYSjbp0PCrNLTz/f5doRixTPaCSernRObeqV1qHN4y55UDMGMa0YPQ/VqPzRy1pHDk0Wbc1fX2uEl3ItXPnQ68RyAWGfJNy/zKA
        UKDfPJUK1BpwAAbOOtXUGLPXbRU4pn9Ulu8C/AO8dksGmJaWEXNMIN9djoQrFw7YkvI2uwdsjPwpCjC+MD2+AqXsHZvkMPn126lB
        v3OD4Jyw24L0H/hDaozUA3x2a5eXL1Qw1niHgJNZR407LbqxPaWtr3sIQaA1clSBH9480RhGipmwsIiaqDntz5vSPoFcndnfSyJf
        c/YL730n9DGCAdQwggHQAgEBMEAwNjEbMBkGA1UECgwSZW5yb2xsLWFnZW50IHRlc3RzMRcwFQYDVQQDDA5GaXh0dXJlIFNpZ25l
        cgIGAI8BAgMEMAsGCWCGSAFlAwQCAaBpMBgGCSqGSIb3DQEJAzELBgkqhkiG9w0BBwEwHAYJKoZIhvcNAQkFMQ8XDTI2MTEyMzAz
        NDIzMVowLwYJKoZIhvcNAQkEMSIEILMNszm74reAITQrQKEg3bZYxFcYGzWHliuumwHOUMHrMA0GCSqGSIb3DQEBAQUABIIBAGYD
        BNtg/Sxcp403t60mJ435xdv2cB87sJ+bT/QRGn3LYToRD/shzIVcKrHCuFU7XJLZv0Am72jlXG6yGwgPEMwc63caEA/+kwF0wXgP
        s2nkjejVZ3oyQ0Fg60E1CVIBIeRncJHCnfA664fWdCm0VvYzMcJwsA9OZHoj2kN7HSh/rrqUIWgUCZM6/rPiEwc6gTXapUQw+AfV
        ei23CUpDatQ1qz/KY6y6BbJHp3IgUxtj9uk+RrTRIxHpXyPFXYu5ET1Yf8S2x54npCAvzcDMT7QcNygvIVCdqQdv/PX6rSMIAq3n
        +hLtNlSCv50kUpFEYzngokVENEBS0tpM69PD3q0=
        """)
    /// The SignedData inside `signedDataContentInfo` (path [1][0]).
    static let signedData = Fixtures.bytes(base64: """
        MIIFTAIBATENMAsGCWCGSAFlAwQCATAZBgkqhkiG9w0BBwGgDAQKaGVsbG8gU0NFUKCCA0MwggM/MIICJ6ADAgECAgYAjwECAwQw
        DQYJKoZIhvcNAQELBQAwNjEbMBkGA1UECgwSZW5yb2xsLWFnZW50IHRlc3RzMRcwFQYDVQQDDA5GaXh0dXJlIFNpZ25lcjAeFw0y
        NjExMjMwMzQyMzFaFw0zNjExMjAwMzQyMzFaMDYxGzAZBgNVBAoMEmVucm9sbC1hZ2VudCB0ZXN0czEXMBUGA1UEAwwORml4dHVy
        ZSBTaWduZXIwggEiMA0GCSqGSIb3DQEBAQUAA4IBDwAwggEKAoIBAQDHwGeUkeZI4zjEsXBnok/Uy4SGrej2WGNvBmUQ7LYiRZN/
        q2zZMUwr7HRMZ++iLafEUgFtm/lu0onNOG+waZG+cWVAhrUnR8gPr9sVgWtc+mLqYALOhOCI8rNCLBfcEHc31+hp+o3zeNLWfBo9
        3tch6PTohj5NoreatttIr6lHaOWiBib2oUQpPl2Pq17AFX1un9BonMoVeJ5wparNsH9HeEdF4xiR+f9pVNLED6kIk1ZUNEOyPPT3
        gZR7Rlx0qtT6yJYci6H6yK32BUulj6oGo0nPL3+JX8WTWih26I9rcPmZpGP5mlKLS3hGDJZ2cJMKdPtmVIByHDzsjy9AgpGVAgMB
        AAGjUzBRMB0GA1UdDgQWBBQjfPLX0Oprw3kXGfoQ65cZ92Rs1TAfBgNVHSMEGDAWgBQjfPLX0Oprw3kXGfoQ65cZ92Rs1TAPBgNV
        HRMBAf8EBTADAQH/MA0GCSqGSIb3DQEBCwUAA4IBAQA1h3TGALWQgcYpY8g2t7MvsIjtQqW5f0PM1hKNunQ8Ks0tPP9/l2hGLFM9
        oJJ6udE5t6pXWoc3jLnlQMwYxrRg9D9Wo/NHLWkcOTRZtzV9fa4SXci1c+dDrxHIBYZ8k3L/MoBQoN88lQrUGnAABs461dQYs9dt
        FTimf1SW7wL8A7x2SwaYlpYRc0wg312OhCsXDtiS8ja7B2yM/CkKML4wPb4Cpewdm+Qw+fXbqUG/c4PgnLDbgvQf+ENqjNQDfHZr
        l5cvVDDWeIeAk1lHjTsturE9pa2vewhBoDVyVIEf3jzRGEaKmbCwiJqoOe3Pm9I+gVyd2d9LIl9z9gvvfSf0MYIB1DCCAdACAQEw
        QDA2MRswGQYDVQQKDBJlbnJvbGwtYWdlbnQgdGVzdHMxFzAVBgNVBAMMDkZpeHR1cmUgU2lnbmVyAgYAjwECAwQwCwYJYIZIAWUD
        BAIBoGkwGAYJKoZIhvcNAQkDMQsGCSqGSIb3DQEHATAcBgkqhkiG9w0BCQUxDxcNMjYxMTIzMDM0MjMxWjAvBgkqhkiG9w0BCQQx
        IgQgsw2zObvit4AhNCtAoSDdtljEVxgbNYeWK66bAc5QweswDQYJKoZIhvcNAQEBBQAEggEAZgME22D9LFynjTe3rSYnjfnF2/Zw
        Hzuwn5tP9BEafcthOhEP+yHMhVwqscK4VTtcktm/QCbvaOVcbrIbCA8QzBzrdxoQD/6TAXTBeA+zaeSN6NVnejJDQWDrQTUJUgEh
        5GdwkcKd8Drrh9Z0KbRW9jMxwnCwD05keiPaQ3sdKH+uupQhaBQJkzr+s+ITBzqBNdqlRDD4B9V6LbcJSkNq1DWrP8pjrLoFsken
        ciBTG2P26T5GtNEjEelfI8Vdi7kRPVh/xLbHniekIC/NwMxPtBw3KC8hUJ2pB2/89fqtIwgCref6Eu02VIK/nSRSkURjOeCiRUQ0
        QFLS2kzr08PerQ==
        """)
    /// The EncapsulatedContentInfo of `signedData` (SignedData child 2): id-data, [0] { OCTET STRING "hello SCEP" }.
    static let encapsulatedContentInfo = Fixtures.bytes(base64: """
        MBkGCSqGSIb3DQEHAaAMBApoZWxsbyBTQ0VQ
        """)
    /// The SignerInfo of `signedData` (SignedData child 4, first element): version 1, issuerAndSerialNumber.
    static let signerInfo = Fixtures.bytes(base64: """
        MIIB0AIBATBAMDYxGzAZBgNVBAoMEmVucm9sbC1hZ2VudCB0ZXN0czEXMBUGA1UEAwwORml4dHVyZSBTaWduZXICBgCPAQIDBDAL
        BglghkgBZQMEAgGgaTAYBgkqhkiG9w0BCQMxCwYJKoZIhvcNAQcBMBwGCSqGSIb3DQEJBTEPFw0yNjExMjMwMzQyMzFaMC8GCSqG
        SIb3DQEJBDEiBCCzDbM5u+K3gCE0K0ChIN22WMRXGBs1h5YrrpsBzlDB6zANBgkqhkiG9w0BAQEFAASCAQBmAwTbYP0sXKeNN7et
        JieN+cXb9nAfO7Cfm0/0ERp9y2E6EQ/7IcyFXCqxwrhVO1yS2b9AJu9o5VxushsIDxDMHOt3GhAP/pMBdMF4D7Np5I3o1Wd6MkNB
        YOtBNQlSASHkZ3CRwp3wOuuH1nQptFb2MzHCcLAPTmR6I9pDex0of666lCFoFAmTOv6z4hMHOoE12qVEMPgH1XottwlKQ2rUNas/
        ymOsugWyR6dyIFMbY/bpPka00SMR6V8jxV2LuRE9WH/EtseeJ6QgL83AzE+0HDcoLyFQnakHb/z1+q0jCAKt5/oS7TZUgr+dJFKR
        RGM54KJFRDRAUtLaTOvTw96t
        """)
    /// The [0] IMPLICIT signedAttrs of `signerInfo` exactly as sent (SignerInfo child 3).
    static let signerInfoSignedAttributes = Fixtures.bytes(base64: """
        oGkwGAYJKoZIhvcNAQkDMQsGCSqGSIb3DQEHATAcBgkqhkiG9w0BCQUxDxcNMjYxMTIzMDM0MjMxWjAvBgkqhkiG9w0BCQQxIgQg
        sw2zObvit4AhNCtAoSDdtljEVxgbNYeWK66bAc5Qwes=
        """)
    /// The signer's IssuerAndSerialNumber (SignerInfo child 1).
    static let issuerAndSerialNumber = Fixtures.bytes(base64: """
        MEAwNjEbMBkGA1UECgwSZW5yb2xsLWFnZW50IHRlc3RzMRcwFQYDVQQDDA5GaXh0dXJlIFNpZ25lcgIGAI8BAgME
        """)
    /// digestAlgorithm of `signerInfo` (SignerInfo child 2): sha256, parameters absent.
    static let sha256AlgorithmIdentifier = Fixtures.bytes(base64: """
        MAsGCWCGSAFlAwQCAQ==
        """)
    /// signatureAlgorithm of `signerInfo` (SignerInfo child 4): rsaEncryption, NULL parameters.
    static let rsaEncryptionAlgorithmIdentifier = Fixtures.bytes(base64: """
        MA0GCSqGSIb3DQEBAQUA
        """)
    /// The messageDigest Attribute of `signerInfo` (third signed attribute).
    static let messageDigestAttribute = Fixtures.bytes(base64: """
        MC8GCSqGSIb3DQEJBDEiBCCzDbM5u+K3gCE0K0ChIN22WMRXGBs1h5YrrpsBzlDB6w==
        """)
    /// `openssl cms -sign -keyid`: the signer is named by subjectKeyIdentifier.
    static let signedDataKeyIDContentInfo = Fixtures.bytes(base64: """
        MIIFMwYJKoZIhvcNAQcCoIIFJDCCBSACAQMxDTALBglghkgBZQMEAgEwGQYJKoZIhvcNAQcBoAwECmhlbGxvIFNDRVCgggNDMIID
        PzCCAiegAwIBAgIGAI8BAgMEMA0GCSqGSIb3DQEBCwUAMDYxGzAZBgNVBAoMEmVucm9sbC1hZ2VudCB0ZXN0czEXMBUGA1UEAwwO
        Rml4dHVyZSBTaWduZXIwHhcNMjYxMTIzMDM0MjMxWhcNMzYxMTIwMDM0MjMxWjA2MRswGQYDVQQKDBJlbnJvbGwtYWdlbnQgdGVz
        dHMxFzAVBgNVBAMMDkZpeHR1cmUgU2lnbmVyMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAx8BnlJHmSOM4xLFwZ6JP
        1MuEhq3o9lhjbwZlEOy2IkWTf6ts2TFMK+x0TGfvoi2nxFIBbZv5btKJzThvsGmRvnFlQIa1J0fID6/bFYFrXPpi6mACzoTgiPKz
        QiwX3BB3N9foafqN83jS1nwaPd7XIej06IY+TaK3mrbbSK+pR2jlogYm9qFEKT5dj6tewBV9bp/QaJzKFXiecKWqzbB/R3hHReMY
        kfn/aVTSxA+pCJNWVDRDsjz094GUe0ZcdKrU+siWHIuh+sit9gVLpY+qBqNJzy9/iV/Fk1ooduiPa3D5maRj+ZpSi0t4RgyWdnCT
        CnT7ZlSAchw87I8vQIKRlQIDAQABo1MwUTAdBgNVHQ4EFgQUI3zy19Dqa8N5Fxn6EOuXGfdkbNUwHwYDVR0jBBgwFoAUI3zy19Dq
        a8N5Fxn6EOuXGfdkbNUwDwYDVR0TAQH/BAUwAwEB/zANBgkqhkiG9w0BAQsFAAOCAQEANYd0xgC1kIHGKWPINrezL7CI7UKluX9D
        zNYSjbp0PCrNLTz/f5doRixTPaCSernRObeqV1qHN4y55UDMGMa0YPQ/VqPzRy1pHDk0Wbc1fX2uEl3ItXPnQ68RyAWGfJNy/zKA
        UKDfPJUK1BpwAAbOOtXUGLPXbRU4pn9Ulu8C/AO8dksGmJaWEXNMIN9djoQrFw7YkvI2uwdsjPwpCjC+MD2+AqXsHZvkMPn126lB
        v3OD4Jyw24L0H/hDaozUA3x2a5eXL1Qw1niHgJNZR407LbqxPaWtr3sIQaA1clSBH9480RhGipmwsIiaqDntz5vSPoFcndnfSyJf
        c/YL730n9DGCAagwggGkAgEDgBQjfPLX0Oprw3kXGfoQ65cZ92Rs1TALBglghkgBZQMEAgGgaTAYBgkqhkiG9w0BCQMxCwYJKoZI
        hvcNAQcBMBwGCSqGSIb3DQEJBTEPFw0yNjExMjMwMzQyMzFaMC8GCSqGSIb3DQEJBDEiBCCzDbM5u+K3gCE0K0ChIN22WMRXGBs1
        h5YrrpsBzlDB6zANBgkqhkiG9w0BAQEFAASCAQBmAwTbYP0sXKeNN7etJieN+cXb9nAfO7Cfm0/0ERp9y2E6EQ/7IcyFXCqxwrhV
        O1yS2b9AJu9o5VxushsIDxDMHOt3GhAP/pMBdMF4D7Np5I3o1Wd6MkNBYOtBNQlSASHkZ3CRwp3wOuuH1nQptFb2MzHCcLAPTmR6
        I9pDex0of666lCFoFAmTOv6z4hMHOoE12qVEMPgH1XottwlKQ2rUNas/ymOsugWyR6dyIFMbY/bpPka00SMR6V8jxV2LuRE9WH/E
        tseeJ6QgL83AzE+0HDcoLyFQnakHb/z1+q0jCAKt5/oS7TZUgr+dJFKRRGM54KJFRDRAUtLaTOvTw96t
        """)
    /// The SignerInfo of `signedDataKeyIDContentInfo` (SignedData child 4, first element): version 3, sid [0] SKI.
    static let signerInfoKeyID = Fixtures.bytes(base64: """
        MIIBpAIBA4AUI3zy19Dqa8N5Fxn6EOuXGfdkbNUwCwYJYIZIAWUDBAIBoGkwGAYJKoZIhvcNAQkDMQsGCSqGSIb3DQEHATAcBgkq
        hkiG9w0BCQUxDxcNMjYxMTIzMDM0MjMxWjAvBgkqhkiG9w0BCQQxIgQgsw2zObvit4AhNCtAoSDdtljEVxgbNYeWK66bAc5Qwesw
        DQYJKoZIhvcNAQEBBQAEggEAZgME22D9LFynjTe3rSYnjfnF2/ZwHzuwn5tP9BEafcthOhEP+yHMhVwqscK4VTtcktm/QCbvaOVc
        brIbCA8QzBzrdxoQD/6TAXTBeA+zaeSN6NVnejJDQWDrQTUJUgEh5GdwkcKd8Drrh9Z0KbRW9jMxwnCwD05keiPaQ3sdKH+uupQh
        aBQJkzr+s+ITBzqBNdqlRDD4B9V6LbcJSkNq1DWrP8pjrLoFskenciBTG2P26T5GtNEjEelfI8Vdi7kRPVh/xLbHniekIC/NwMxP
        tBw3KC8hUJ2pB2/89fqtIwgCref6Eu02VIK/nSRSkURjOeCiRUQ0QFLS2kzr08PerQ==
        """)
    /// `openssl cms -sign -stream`: indefinite lengths, eContent as a constructed OCTET STRING.
    static let signedDataStreamBER = Fixtures.bytes(base64: """
        MIAGCSqGSIb3DQEHAqCAMIACAQExDTALBglghkgBZQMEAgEwgAYJKoZIhvcNAQcBoIAkgAQKaGVsbG8gU0NFUAAAAAAAAKCCA0Mw
        ggM/MIICJ6ADAgECAgYAjwECAwQwDQYJKoZIhvcNAQELBQAwNjEbMBkGA1UECgwSZW5yb2xsLWFnZW50IHRlc3RzMRcwFQYDVQQD
        DA5GaXh0dXJlIFNpZ25lcjAeFw0yNjExMjMwMzQyMzFaFw0zNjExMjAwMzQyMzFaMDYxGzAZBgNVBAoMEmVucm9sbC1hZ2VudCB0
        ZXN0czEXMBUGA1UEAwwORml4dHVyZSBTaWduZXIwggEiMA0GCSqGSIb3DQEBAQUAA4IBDwAwggEKAoIBAQDHwGeUkeZI4zjEsXBn
        ok/Uy4SGrej2WGNvBmUQ7LYiRZN/q2zZMUwr7HRMZ++iLafEUgFtm/lu0onNOG+waZG+cWVAhrUnR8gPr9sVgWtc+mLqYALOhOCI
        8rNCLBfcEHc31+hp+o3zeNLWfBo93tch6PTohj5NoreatttIr6lHaOWiBib2oUQpPl2Pq17AFX1un9BonMoVeJ5wparNsH9HeEdF
        4xiR+f9pVNLED6kIk1ZUNEOyPPT3gZR7Rlx0qtT6yJYci6H6yK32BUulj6oGo0nPL3+JX8WTWih26I9rcPmZpGP5mlKLS3hGDJZ2
        cJMKdPtmVIByHDzsjy9AgpGVAgMBAAGjUzBRMB0GA1UdDgQWBBQjfPLX0Oprw3kXGfoQ65cZ92Rs1TAfBgNVHSMEGDAWgBQjfPLX
        0Oprw3kXGfoQ65cZ92Rs1TAPBgNVHRMBAf8EBTADAQH/MA0GCSqGSIb3DQEBCwUAA4IBAQA1h3TGALWQgcYpY8g2t7MvsIjtQqW5
        f0PM1hKNunQ8Ks0tPP9/l2hGLFM9oJJ6udE5t6pXWoc3jLnlQMwYxrRg9D9Wo/NHLWkcOTRZtzV9fa4SXci1c+dDrxHIBYZ8k3L/
        MoBQoN88lQrUGnAABs461dQYs9dtFTimf1SW7wL8A7x2SwaYlpYRc0wg312OhCsXDtiS8ja7B2yM/CkKML4wPb4Cpewdm+Qw+fXb
        qUG/c4PgnLDbgvQf+ENqjNQDfHZrl5cvVDDWeIeAk1lHjTsturE9pa2vewhBoDVyVIEf3jzRGEaKmbCwiJqoOe3Pm9I+gVyd2d9L
        Il9z9gvvfSf0MYIB1DCCAdACAQEwQDA2MRswGQYDVQQKDBJlbnJvbGwtYWdlbnQgdGVzdHMxFzAVBgNVBAMMDkZpeHR1cmUgU2ln
        bmVyAgYAjwECAwQwCwYJYIZIAWUDBAIBoGkwGAYJKoZIhvcNAQkDMQsGCSqGSIb3DQEHATAcBgkqhkiG9w0BCQUxDxcNMjYxMTIz
        MDM0MjMxWjAvBgkqhkiG9w0BCQQxIgQgsw2zObvit4AhNCtAoSDdtljEVxgbNYeWK66bAc5QweswDQYJKoZIhvcNAQEBBQAEggEA
        ZgME22D9LFynjTe3rSYnjfnF2/ZwHzuwn5tP9BEafcthOhEP+yHMhVwqscK4VTtcktm/QCbvaOVcbrIbCA8QzBzrdxoQD/6TAXTB
        eA+zaeSN6NVnejJDQWDrQTUJUgEh5GdwkcKd8Drrh9Z0KbRW9jMxwnCwD05keiPaQ3sdKH+uupQhaBQJkzr+s+ITBzqBNdqlRDD4
        B9V6LbcJSkNq1DWrP8pjrLoFskenciBTG2P26T5GtNEjEelfI8Vdi7kRPVh/xLbHniekIC/NwMxPtBw3KC8hUJ2pB2/89fqtIwgC
        ref6Eu02VIK/nSRSkURjOeCiRUQ0QFLS2kzr08PerQAAAAAAAA==
        """)
    /// `signedDataStreamBER` re-encoded as DER by `openssl cms -cmsout`.
    static let signedDataStreamDER = Fixtures.bytes(base64: """
        MIIFXwYJKoZIhvcNAQcCoIIFUDCCBUwCAQExDTALBglghkgBZQMEAgEwGQYJKoZIhvcNAQcBoAwECmhlbGxvIFNDRVCgggNDMIID
        PzCCAiegAwIBAgIGAI8BAgMEMA0GCSqGSIb3DQEBCwUAMDYxGzAZBgNVBAoMEmVucm9sbC1hZ2VudCB0ZXN0czEXMBUGA1UEAwwO
        Rml4dHVyZSBTaWduZXIwHhcNMjYxMTIzMDM0MjMxWhcNMzYxMTIwMDM0MjMxWjA2MRswGQYDVQQKDBJlbnJvbGwtYWdlbnQgdGVz
        dHMxFzAVBgNVBAMMDkZpeHR1cmUgU2lnbmVyMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAx8BnlJHmSOM4xLFwZ6JP
        1MuEhq3o9lhjbwZlEOy2IkWTf6ts2TFMK+x0TGfvoi2nxFIBbZv5btKJzThvsGmRvnFlQIa1J0fID6/bFYFrXPpi6mACzoTgiPKz
        QiwX3BB3N9foafqN83jS1nwaPd7XIej06IY+TaK3mrbbSK+pR2jlogYm9qFEKT5dj6tewBV9bp/QaJzKFXiecKWqzbB/R3hHReMY
        kfn/aVTSxA+pCJNWVDRDsjz094GUe0ZcdKrU+siWHIuh+sit9gVLpY+qBqNJzy9/iV/Fk1ooduiPa3D5maRj+ZpSi0t4RgyWdnCT
        CnT7ZlSAchw87I8vQIKRlQIDAQABo1MwUTAdBgNVHQ4EFgQUI3zy19Dqa8N5Fxn6EOuXGfdkbNUwHwYDVR0jBBgwFoAUI3zy19Dq
        a8N5Fxn6EOuXGfdkbNUwDwYDVR0TAQH/BAUwAwEB/zANBgkqhkiG9w0BAQsFAAOCAQEANYd0xgC1kIHGKWPINrezL7CI7UKluX9D
        zNYSjbp0PCrNLTz/f5doRixTPaCSernRObeqV1qHN4y55UDMGMa0YPQ/VqPzRy1pHDk0Wbc1fX2uEl3ItXPnQ68RyAWGfJNy/zKA
        UKDfPJUK1BpwAAbOOtXUGLPXbRU4pn9Ulu8C/AO8dksGmJaWEXNMIN9djoQrFw7YkvI2uwdsjPwpCjC+MD2+AqXsHZvkMPn126lB
        v3OD4Jyw24L0H/hDaozUA3x2a5eXL1Qw1niHgJNZR407LbqxPaWtr3sIQaA1clSBH9480RhGipmwsIiaqDntz5vSPoFcndnfSyJf
        c/YL730n9DGCAdQwggHQAgEBMEAwNjEbMBkGA1UECgwSZW5yb2xsLWFnZW50IHRlc3RzMRcwFQYDVQQDDA5GaXh0dXJlIFNpZ25l
        cgIGAI8BAgMEMAsGCWCGSAFlAwQCAaBpMBgGCSqGSIb3DQEJAzELBgkqhkiG9w0BBwEwHAYJKoZIhvcNAQkFMQ8XDTI2MTEyMzAz
        NDIzMVowLwYJKoZIhvcNAQkEMSIEILMNszm74reAITQrQKEg3bZYxFcYGzWHliuumwHOUMHrMA0GCSqGSIb3DQEBAQUABIIBAGYD
        BNtg/Sxcp403t60mJ435xdv2cB87sJ+bT/QRGn3LYToRD/shzIVcKrHCuFU7XJLZv0Am72jlXG6yGwgPEMwc63caEA/+kwF0wXgP
        s2nkjejVZ3oyQ0Fg60E1CVIBIeRncJHCnfA664fWdCm0VvYzMcJwsA9OZHoj2kN7HSh/rrqUIWgUCZM6/rPiEwc6gTXapUQw+AfV
        ei23CUpDatQ1qz/KY6y6BbJHp3IgUxtj9uk+RrTRIxHpXyPFXYu5ET1Yf8S2x54npCAvzcDMT7QcNygvIVCdqQdv/PX6rSMIAq3n
        +hLtNlSCv50kUpFEYzngokVENEBS0tpM69PD3q0=
        """)
    /// `openssl cms -encrypt -aes128` to recipientCertificatePEM: ContentInfo.
    static let envelopedDataContentInfo = Fixtures.bytes(base64: """
        MIIBsgYJKoZIhvcNAQcDoIIBozCCAZ8CAQAxggFaMIIBVgIBADA+MDkxGzAZBgNVBAoMEmVucm9sbC1hZ2VudCB0ZXN0czEaMBgG
        A1UEAwwRRml4dHVyZSBSZWNpcGllbnQCAQcwDQYJKoZIhvcNAQEBBQAEggEAVORMFo1rjD7ZrtIaztZrbHs48rNqRAQwezC0dDFP
        txqQZ9e0rSS2eD/wFr3FVYDSgg/X3ABoayI5MTOzt9Z6AuvMDydbIwX81kj2EKsDNNa5IdtUkU9wn8PL+r3MPanVvYx6ohKdJ1fw
        lX0NShDG+Q2MJePUtdFbc5gJxE2ksIwdIKVMPDFEoYC2MdJxEZttm2H1OzqF/9f/88bXlpLQZLVqExywvsJZF8BIs22PE0IwlZaG
        cUKBtH6f1T90SWEVVXAKdS94QuhsnzkLNlXQJM3YPG1BfBqtk6V84/vKkk/XtwY0AT9m0et/aSgHdb2eBpQ6Wk/tAjGo/EGfNrmn
        5TA8BgkqhkiG9w0BBwEwHQYJYIZIAWUDBAECBBC6OZ1Mn/Pr1eHeFGuyMzOLgBAJmSmswcEqYwvJKNUbQidK
        """)
    /// The EnvelopedData inside `envelopedDataContentInfo` (path [1][0]): version 0.
    static let envelopedData = Fixtures.bytes(base64: """
        MIIBnwIBADGCAVowggFWAgEAMD4wOTEbMBkGA1UECgwSZW5yb2xsLWFnZW50IHRlc3RzMRowGAYDVQQDDBFGaXh0dXJlIFJlY2lw
        aWVudAIBBzANBgkqhkiG9w0BAQEFAASCAQBU5EwWjWuMPtmu0hrO1mtsezjys2pEBDB7MLR0MU+3GpBn17StJLZ4P/AWvcVVgNKC
        D9fcAGhrIjkxM7O31noC68wPJ1sjBfzWSPYQqwM01rkh21SRT3Cfw8v6vcw9qdW9jHqiEp0nV/CVfQ1KEMb5DYwl49S10VtzmAnE
        TaSwjB0gpUw8MUShgLYx0nERm22bYfU7OoX/1//zxteWktBktWoTHLC+wlkXwEizbY8TQjCVloZxQoG0fp/VP3RJYRVVcAp1L3hC
        6GyfOQs2VdAkzdg8bUF8Gq2TpXzj+8qST9e3BjQBP2bR639pKAd1vZ4GlDpaT+0CMaj8QZ82uaflMDwGCSqGSIb3DQEHATAdBglg
        hkgBZQMEAQIEELo5nUyf8+vV4d4Ua7IzM4uAEAmZKazBwSpjC8ko1RtCJ0o=
        """)
    /// The KeyTransRecipientInfo of `envelopedData` (the RecipientInfos SET, first element): version 0, issuerAndSerialNumber, rsaEncryption.
    static let keyTransRecipientInfo = Fixtures.bytes(base64: """
        MIIBVgIBADA+MDkxGzAZBgNVBAoMEmVucm9sbC1hZ2VudCB0ZXN0czEaMBgGA1UEAwwRRml4dHVyZSBSZWNpcGllbnQCAQcwDQYJ
        KoZIhvcNAQEBBQAEggEAVORMFo1rjD7ZrtIaztZrbHs48rNqRAQwezC0dDFPtxqQZ9e0rSS2eD/wFr3FVYDSgg/X3ABoayI5MTOz
        t9Z6AuvMDydbIwX81kj2EKsDNNa5IdtUkU9wn8PL+r3MPanVvYx6ohKdJ1fwlX0NShDG+Q2MJePUtdFbc5gJxE2ksIwdIKVMPDFE
        oYC2MdJxEZttm2H1OzqF/9f/88bXlpLQZLVqExywvsJZF8BIs22PE0IwlZaGcUKBtH6f1T90SWEVVXAKdS94QuhsnzkLNlXQJM3Y
        PG1BfBqtk6V84/vKkk/XtwY0AT9m0et/aSgHdb2eBpQ6Wk/tAjGo/EGfNrmn5Q==
        """)
    /// The EncryptedContentInfo of `envelopedData` (EnvelopedData child 2): id-data, aes-128-cbc, [0] 16 bytes.
    static let encryptedContentInfo = Fixtures.bytes(base64: """
        MDwGCSqGSIb3DQEHATAdBglghkgBZQMEAQIEELo5nUyf8+vV4d4Ua7IzM4uAEAmZKazBwSpjC8ko1RtCJ0o=
        """)
    /// contentEncryptionAlgorithm of `encryptedContentInfo` (EncryptedContentInfo child 1): aes-128-cbc with its IV.
    static let aes128AlgorithmIdentifier = Fixtures.bytes(base64: """
        MB0GCWCGSAFlAwQBAgQQujmdTJ/z69Xh3hRrsjMziw==
        """)
    /// `openssl cms -encrypt -aes128 -keyid`: ContentInfo whose recipient is named by SKI.
    static let envelopedDataKeyIDContentInfo = Fixtures.bytes(base64: """
        MIIBiAYJKoZIhvcNAQcDoIIBeTCCAXUCAQIxggEwMIIBLAIBAoAUKXJFVFqCZBzw2n7eSKkJMBXTznYwDQYJKoZIhvcNAQEBBQAE
        ggEAW0goBmOQe2mMnSv9T6kES5t8smfcQaIOqctmBgXNkQazEDjk6taIEGVOuI6WOOVODnjlwGESd9+5BK4lHar6+i4oY7lkchJr
        rA1MIdj1uY5F61bmwv4dYtI0mEw8qUqjmtfEyQgViiWXAxzyi8UF4z/u9UV1MtNQqLsJrdDoM8umCPOqZaOX0qonW+wnhWsgv8J+
        G7FuO1+kfeuiYjuoL7K94moUGXE2I/sIehfMybrNMgE0xqwhqRKx7ZNbMcQEEnGF+APlb36ohB0kJ1rp+ws2376lXh2z5+sgb80Z
        XIY5MvlJ5WNySBkan5YgmFoxSv0XI+LeP2hwodlxjG15kjA8BgkqhkiG9w0BBwEwHQYJYIZIAWUDBAECBBCdf+Zxc1jpH1UboN6d
        WUmjgBBu3dDmR+ptP3j9U7cZ5jlr
        """)
    /// The KeyTransRecipientInfo of `envelopedDataKeyIDContentInfo` (the RecipientInfos SET, first element): version 2, rid [0] SKI.
    static let keyTransRecipientInfoKeyID = Fixtures.bytes(base64: """
        MIIBLAIBAoAUKXJFVFqCZBzw2n7eSKkJMBXTznYwDQYJKoZIhvcNAQEBBQAEggEAW0goBmOQe2mMnSv9T6kES5t8smfcQaIOqctm
        BgXNkQazEDjk6taIEGVOuI6WOOVODnjlwGESd9+5BK4lHar6+i4oY7lkchJrrA1MIdj1uY5F61bmwv4dYtI0mEw8qUqjmtfEyQgV
        iiWXAxzyi8UF4z/u9UV1MtNQqLsJrdDoM8umCPOqZaOX0qonW+wnhWsgv8J+G7FuO1+kfeuiYjuoL7K94moUGXE2I/sIehfMybrN
        MgE0xqwhqRKx7ZNbMcQEEnGF+APlb36ohB0kJ1rp+ws2376lXh2z5+sgb80ZXIY5MvlJ5WNySBkan5YgmFoxSv0XI+LeP2hwodlx
        jG15kg==
        """)
    /// `openssl cms -encrypt -stream`: indefinite lengths, encryptedContent as constructed [0].
    static let envelopedDataStreamBER = Fixtures.bytes(base64: """
        MIAGCSqGSIb3DQEHA6CAMIACAQAxggFaMIIBVgIBADA+MDkxGzAZBgNVBAoMEmVucm9sbC1hZ2VudCB0ZXN0czEaMBgGA1UEAwwR
        Rml4dHVyZSBSZWNpcGllbnQCAQcwDQYJKoZIhvcNAQEBBQAEggEAcmy4XCqfGqLWJAID8dECjZD1lVE/YE2knHks2JjL0tyBOIDF
        dzfN96X4xxiVoJflfHfG4VYlJzFdFGWR50ARSjjh952T9dkq9RkA6XiEXgywMP9oN9dQgFLpVhgUU38bi9RENtUHynPsB+h0bir4
        xeE6G279OxDGo5Rp9XHCTkRs31QZeJQgLbZ8NQEdUGzWX6TYfgb3TUROj1TKN4psTVRP6G10+caTS7IFg5+sdDtYoEr68sJOTb8H
        C7od2IMPObmGGI+OC84yoaXEfJc40eXWg2ifry5Q8Nr6AiPnKKqhaOhJJkG+GgOcvnXXkdsVnXk4r+OTc7180qXWderQOzCABgkq
        hkiG9w0BBwEwHQYJYIZIAWUDBAECBBDtaKVquXfrKpRGRXWgan4KoIAEEKoexEKgebnZ7sXIIladz8EAAAAAAAAAAAAA
        """)
    /// `envelopedDataStreamBER` re-encoded as DER by `openssl cms -cmsout`.
    static let envelopedDataStreamDER = Fixtures.bytes(base64: """
        MIIBsgYJKoZIhvcNAQcDoIIBozCCAZ8CAQAxggFaMIIBVgIBADA+MDkxGzAZBgNVBAoMEmVucm9sbC1hZ2VudCB0ZXN0czEaMBgG
        A1UEAwwRRml4dHVyZSBSZWNpcGllbnQCAQcwDQYJKoZIhvcNAQEBBQAEggEAcmy4XCqfGqLWJAID8dECjZD1lVE/YE2knHks2JjL
        0tyBOIDFdzfN96X4xxiVoJflfHfG4VYlJzFdFGWR50ARSjjh952T9dkq9RkA6XiEXgywMP9oN9dQgFLpVhgUU38bi9RENtUHynPs
        B+h0bir4xeE6G279OxDGo5Rp9XHCTkRs31QZeJQgLbZ8NQEdUGzWX6TYfgb3TUROj1TKN4psTVRP6G10+caTS7IFg5+sdDtYoEr6
        8sJOTb8HC7od2IMPObmGGI+OC84yoaXEfJc40eXWg2ifry5Q8Nr6AiPnKKqhaOhJJkG+GgOcvnXXkdsVnXk4r+OTc7180qXWderQ
        OzA8BgkqhkiG9w0BBwEwHQYJYIZIAWUDBAECBBDtaKVquXfrKpRGRXWgan4KgBCqHsRCoHm52e7FyCJWnc/B
        """)
    /// openssl asn1parse -genconf: SEQUENCE { issuer Name (O=enroll-agent tests, CN=Fixture Signer; UTF8), subject Name (CN=device-0042; PrintableString) }.
    static let issuerAndSubject = Fixtures.bytes(base64: """
        MFAwNjEbMBkGA1UECgwSZW5yb2xsLWFnZW50IHRlc3RzMRcwFQYDVQQDDA5GaXh0dXJlIFNpZ25lcjAWMRQwEgYDVQQDEwtkZXZp
        Y2UtMDA0Mg==
        """)
    /// openssl asn1parse -genconf: Attribute { OID 2.16.840.1.113733.1.9.2, SET { PrintableString "19" } } (messageType PKCSReq).
    static let scepMessageTypeAttribute = Fixtures.bytes(base64: """
        MBIGCmCGSAGG+EUBCQIxBBMCMTk=
        """)
    /// openssl asn1parse -genconf: AlgorithmIdentifier { aes-128-cbc, OCTET STRING 000102..0F }.
    static let aes128AlgorithmIdentifierGenconf = Fixtures.bytes(base64: """
        MB0GCWCGSAFlAwQBAgQQAAECAwQFBgcICQoLDA0ODw==
        """)
}

/// Symmetric cipher vectors: `openssl enc -<cipher> -K <key> -iv <iv> -in plain.txt` (PKCS#7 padding).
enum CipherVectors {
    static let plaintext = Array("SCEP envelope test vector: 41 bytes long.".utf8)
    static let aesIV = Fixtures.hex("f0e1d2c3b4a5968778695a4b3c2d1e0f")
    static let desIV = Fixtures.hex("1122334455667788")
    static let aes128Key = Fixtures.hex("000102030405060708090a0b0c0d0e0f")
    static let aes256Key = Fixtures.hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
    static let des3Key = Fixtures.hex("0123456789abcdeffedcba987654321089abcdef01234567")
    static let desKey = Fixtures.hex("0123456789abcdef")
    static let aes128Ciphertext = Fixtures.hex("fe5f02f04a6de9bb7b11a29face340ded3b6b4f6bb803a451cbdcff796b4780e0b090f5e71952a6f2b2601d97256920b")
    static let aes256Ciphertext = Fixtures.hex("dbd829c5ff76db8b9e12513f7df2466b87d49a36a4b0ca22d6265eef94d3eb6b6d5ede52622458ed29bfaa3359d89cad")
    static let des3Ciphertext = Fixtures.hex("71dd7595d22259dcba8b731a852bc74108eb7ddf1dea249ceb15cb82839ff5eb0804a61edc7ec1604f12705ef0274512")
    /// `openssl enc -provider legacy -provider default -des-cbc ...`
    static let desCiphertext = Fixtures.hex("fdb4a99bad5ac502c022964f14cdf6467f2e1687c3a024f4a5a9cee81dcf8377f3cfc642be243001dc357db29bd98397")
}


/// One real enrollment against micromdm scepserver 2.1.0 (captured 2026-11-23 03:37:55 UTC; the CA is
/// valid 2026-11-23 03:37:53Z ... 2027-11-23 03:37:53Z, serial 1; the client certificate serial 2).
/// scepserver signs with SHA-1 and encrypts with single DES whatever the request used.
enum ScepServerCapture {
    /// The GetCACaps body (LF-separated, no final newline).
    static let getCACapsReply = """
        Renewal
        SHA-1
        SHA-256
        AES
        DES3
        SCEPStandard
        POSTPKIOperation
        """
    /// The GetCACert body: a bare DER certificate (C=US, O=Test CA, OU=SCEP CA; application/x-x509-ca-cert).
    static let caCertificate = Fixtures.bytes(base64: """
        MIIDHzCCAgegAwIBAgIBATANBgkqhkiG9w0BAQsFADAxMQswCQYDVQQGEwJVUzEQMA4GA1UEChMHVGVzdCBDQTEQMA4GA1UECxMH
        U0NFUCBDQTAeFw0yNjExMjMwMzM3NTNaFw0yNzExMjMwMzM3NTNaMDExCzAJBgNVBAYTAlVTMRAwDgYDVQQKEwdUZXN0IENBMRAw
        DgYDVQQLEwdTQ0VQIENBMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAtZXqpKWwNfS8H4NHTJINOS5LQdbOYqiVF7Yu
        wSBo1maW/BoOCZtjdyy0kZA8Sfg8Y1xxk9GdS3Eww0IAVdap3QxwZAtkuSLlpQmoYKUwRDD5GRXNN/kn7l1KAU9Zv74MF7IzcJM4
        6BMYgC+V4B2/vQq9b1HCYRHLuWACOhtrmec+5Vyh/acccVrQBMviZGbG0ho/Xbhp9l+XraPB+0RCCUdd/e1ne2ZvnAcf7EZzVyqc
        4ZiOFMhwXIsiPIhoPxUEoBQXtAzdvpJFzpjf9cTQBNHVrVbfBbR+s+RfIKWxuf3ACLUC2z3q9UAHjADHmcPdZu5SZ7EdA4+4xSlX
        eNaUZwIDAQABo0IwQDAOBgNVHQ8BAf8EBAMCAQYwDwYDVR0TAQH/BAUwAwEB/zAdBgNVHQ4EFgQUHPbti29nMw46Cg/goHp4ES4C
        7QswDQYJKoZIhvcNAQELBQADggEBAHXTNWMUYi+ZHu7XutKqT0EYHFNhbFx8Xi3301yjET2hJUSEQ1s7R70+Cq3ySrbneBLt1OQ+
        uGPv2htw8/FcL2h2SSZ9bJvGU8yKnvClwebrKNIHHTr5hwEKCUJhYPPKF32pv1OO2pz0VqItmcoYx3kq6ZBXCKHwfVbI7F+FAKkU
        PeN5dnTCY3u4GKWENyrZIivyVlSKGZ8kGQ1vNeRI/qMjb9ErJGbQKLqyhV9tw34nZv/cIGTNflQCSWHiRjU4eopGMsbJ28D3QFH5
        P2nFGptvMJTrAfN/oAHiCjRvVEIirXgCDjjqJMgQ7TWjj84takPwyE8X9XeRxg1ATkKeNpA=
        """)
    /// SHA-256 fingerprint of `caCertificate` as `openssl x509 -fingerprint -sha256` prints it.
    static let caFingerprintOpenSSL = "8D:54:DD:40:9C:C5:97:23:B1:42:23:B0:B1:0C:CA:B8:1F:2E:DE:CB:39:4F:9B:FC:D5:C9:DF:C4:59:BD:58:C5"
    /// The PKCSReq pkiMessage scepclient POSTed (SHA-1, DES, self-signed signer certificate).
    static let pkcsReq = Fixtures.bytes(base64: """
        MIIJ1AYJKoZIhvcNAQcCoIIJxTCCCcECAQExCTAHBgUrDgMCGjCCBGMGCSqGSIb3DQEHAaCCBFQEggRQMIIETAYJKoZIhvcNAQcD
        oIIEPTCCBDkCAQAxggFQMIIBTAIBADA2MDExCzAJBgNVBAYTAlVTMRAwDgYDVQQKEwdUZXN0IENBMRAwDgYDVQQLEwdTQ0VQIENB
        AgEBMAsGCSqGSIb3DQEBAQSCAQAyzSMCYRdwojM0t9XRizLRFUJHw519YNHbtwD+x24E01/XBmeu56AmMJcAFYqOA5Xs4zLcaaAP
        n6QZQB0QaZj2Dn4jPzMpA8lxJ9svGOAAhYMI2CkmrtxWLqmJQVvCQqVmAVwbniIys9SOvdIvFWckPSYgo3bAqzYmFYn2doqFaNaK
        uYzHqJ+Kby2s6CgJTz0d53a7CY1yVnwWY19Z5O4qcSRFQXRuyxzxC4nid1Hh1+syzmBuN3BPuT+ZZyUbA841WtuAYVzzzlX33nPD
        EUMGmtoFxbZhnXggdFb62VGx+Py8uZ+EOFZuPjkDSShw7r+9dRM2QBQ/ZQlB94pmw+wKMIIC3gYJKoZIhvcNAQcBMBEGBSsOAwIH
        BAgdd2yCtvYiqKCCArwEggK4ioEOnUQYyb+QGDixwoYuGH5OZoPjl3Uo3P5NiDhb+SfjyCT2KKaxvDsMOJkWwNJJa5v3ofLiZlX+
        PefqUYHV6RlQv7h9j+0EqB5mtPavNr9IzLabIM67/IEb7NinZ2ZAbDW4AE6mrtupUrYlZokfJ14nzF3PS2sf+hfFKYS4FIcoabwY
        VriQCCBIn0WpeOIk/mdwbKSS5SMKPuZQfRPh0UuEJ/g3GAo3sBiKVQXsrnflRg/sxed/G1NjlxMRp8MpPf67PsckLqTtkiCTT1mF
        OFkzfbOBKanE1iUeNb4jNdDIGTTpauLpgPHqjcl+fDnI/4ZRth/MDzd/kBYM0sfCXDHdRJRaph5FaJc/Om8s+Yb+7pTUarJmbiOv
        p/uq/sfkXst7KC95Q+6R1Or0bN4TEDHI+lh3JOE1nTUdsus5X1FBBP3f+sEKFwTwFLYC4Ean4VqUxed+UPU8wLK/8pIwB7rn5qad
        JMFcRveVdqL/B0McNao/N+dVMGUHSwuXCeNt9tMBS9paJVIf/ftdU8E7oQMURLZ5azfXFI2B7VKvpI7xY51fdXhuX0p9xUypNNK7
        XIaGiA4W9kyu5yYQrfLXxJP0IguKBkyBfJo35EDcJOSBUnB6ARlGHJFWObnWtTG1lFtvUq8mw41qyenJox1mxkkVd/S7UEQuVD22
        kX1BfTV+nMF35hZv8rq/guspW2/18boRYIMfvgyzWRJpC5WuLkJauugG7VY0tebwMOU2+SJGN99hxPheswww4AX+N7fTGQ3BIlaC
        NNo6ZdNx7hgzIwBevj3Zg4efB3SdkRC6Ucf5QZ7b5+R33iR73BKb/yUrWP6dbFu+b7qMNbp3RLbVZ3wAYhAGMtvZ0B2vWE9DsrpX
        OpAh6AELl5oOa99vbXPHcb4x692dH1QluzelZbBu0woSWlchx9hnoIIDHDCCAxgwggIAoAMCAQICEQCYAnBhV1JuSELNzfswm098
        MA0GCSqGSIb3DQEBCwUAMCwxFDASBgNVBAoTC3NjZXAtY2xpZW50MRQwEgYDVQQDEwtTQ0VQIFNJR05FUjAeFw0yNjExMjMwMzM3
        NTVaFw0yNjExMjMwNDM3NTVaMCwxFDASBgNVBAoTC3NjZXAtY2xpZW50MRQwEgYDVQQDEwtTQ0VQIFNJR05FUjCCASIwDQYJKoZI
        hvcNAQEBBQADggEPADCCAQoCggEBAOxsHzjFEcVHA9jUIz8T4DjvxZUMENetDpQevz2hizp3/ct69TPhrXnzcPCjSRcZuDhbBNkL
        KfI+RTbxMjN76pT+leBPba0B8aPd/zX3Y1xY9I4wreDrIaIx023nPks7zgR6JH2af9VrKMnVOJ81gY/nsxkFoUppVYM9Qib3n8sy
        3DlryKRMfNgpMyCjkmS0KvIFhlK3yeTbE/L6fMaXR891kjXHHRfaa9ivcvaeJ4jHnMk7EVmtONeREqTv+Fow7WuuO/gnUkqPQL0P
        Fcob+ouPzT0jdmAJN4x99tef0KYUA2aDvHdiO4UMAjtH5bIm69qUb1kqWU+7F32C3OorvIUCAwEAAaM1MDMwDgYDVR0PAQH/BAQD
        AgWgMBMGA1UdJQQMMAoGCCsGAQUFBwMBMAwGA1UdEwEB/wQCMAAwDQYJKoZIhvcNAQELBQADggEBAEii58us3gX1lmBsNU0LIonA
        xvdxN4RKpbg311c2e77GywRktdrt8U6m13GVO7x/ZBiFv7X1vxmRs6LoNDPMlhV1ovFXgaUzXx1Qk0FkT1PrM83RgpWaOWWsd5Ft
        tIVZtz/3l18KDP5Q0H0z21s8myACz0JaAJbTWDhH2l+BGRo+BCOWqhATLy6qkb6ingG72zbIgGQRg/IiP2Tg56nmbj4SULC6rizu
        5IERc9WOwVLU8NOXWkGxpcyd9UNpd6beIvpECmbb55Z5Gxe2ys3lIc7pgBn3cxYZTqsg8OI+PM1RD+7MOtJPGn9A+LY0PAEsdoR7
        y4PiXU81OO0ubxZYQNMxggIoMIICJAIBATBBMCwxFDASBgNVBAoTC3NjZXAtY2xpZW50MRQwEgYDVQQDEwtTQ0VQIFNJR05FUgIR
        AJgCcGFXUm5IQs3N+zCbT3wwBwYFKw4DAhqggcEwEgYKYIZIAYb4RQEJAjEEEwIxOTAYBgkqhkiG9w0BCQMxCwYJKoZIhvcNAQcB
        MBwGCSqGSIb3DQEJBTEPFw0yNjExMjMwMzM3NTVaMCAGCmCGSAGG+EUBCQUxEgQQYvonUGIviOLephxg+ePHizAjBgkqhkiG9w0B
        CQQxFgQUYG2FYwjZKfuOs/TKBMswKrCGhzkwLAYKYIZIAYb4RQEJBzEeExxuMW05eTdkVjZPcEFJaVlzS1FVUExSaTlwOVE9MAsG
        CSqGSIb3DQEBBQSCAQC6/jVokhxxe/DAi7g3ZNOJjpCPYa50EBDP9Efp65vf2ZqlFlev7JxOuGyxqvAYC/MLu2BD9Ytp2UcalWUW
        b5QAeqLOgZBZvmEce9YU+AJ+U7AD1mS6Blqxn3Ol8Tlbbp9NJMJHbm9yItaOKoJXgIqGAAvXqfwKLKI2ddXh9yrJH6cxAu+f2tkb
        QEKoj2NkxMAErfO74RByYsuV0fsmY5dAJQpSYPr277AQt54GaLA1aV/PfHI55EpUXA8/sLsNfNk3qrOk+Ey4GjyVY7vUpw5FlmHS
        0PFIvSKuSbIQcSa3CqgqtLranchtGsBP+uKPGYuz9HNra0WiJvfQPTLg9Dwx
        """)
    /// The SUCCESS CertRep scepserver answered (SHA-1 signature by the CA, DES-CBC envelope to the client key).
    static let certRep = Fixtures.bytes(base64: """
        MIIOUAYJKoZIhvcNAQcCoIIOQTCCDj0CAQExCTAHBgUrDgMCGjCCBU4GCSqGSIb3DQEHAaCCBT8EggU7MIIFNwYJKoZIhvcNAQcD
        oIIFKDCCBSQCAQAxggFbMIIBVwIBADBBMCwxFDASBgNVBAoTC3NjZXAtY2xpZW50MRQwEgYDVQQDEwtTQ0VQIFNJR05FUgIRAJgC
        cGFXUm5IQs3N+zCbT3wwCwYJKoZIhvcNAQEBBIIBAInnXS12iaNDXr+Zf6mvlgBX1HWMX7Ij5cA/f9qOWH1ikZMzVxCVRycttOUE
        jJuQpp3M+zVvgD4tQDisvtPw6rjUkPyxNOylZ8n28y0n7VYTdY2qG6NEOSba3uzTBJ6G0n+Y6E+GTphbqeMQ+/y+2INl4jBa5uVl
        Lbu/FnHP6mgzB9x8zOK7usAf2LWfOGzlQ47aYBAAfJ3OE8UdECSlZmqWEpZClnMphb/2vv0Q7Ez1JCic5o9yz4v0zK3y3QsXQJva
        x4QHh4HvE8jLMDtVUblj5v4+wD1GM4rjvV9RbreL0oPwo2NZXVUF4FNHuc5mz5Favz0cClvDL+wQL/MvTtMwggO+BgkqhkiG9w0B
        BwEwEQYFKw4DAgcECDIei0ZyWyULoIIDnASCA5hgciXvwgGMkmN5vxBCSJs/WNTeOVx1AyNORD8TifyGBsj52lIYG4gAIfOOgvrd
        iaaoesboTYCWA96ABHCB30059g0LW9trb4SlqRQBZbyV8ugKmtkWQ7u1+0VJpDpmDs2Dbgv6sBfh8gpYGct5yggrPeKV1XSG0tDy
        5WcRgMunVizTfqUSDhc11WtDfOdwadpzO72nikExYLDEz8JsYX0joUtA3EhXGy/P/ZSivcjkrkOxtmTdxeMW1s9lsxd/JFizWYmL
        RFEOfiY0iyIbVOOeZHTrM71DKLcv9VthCM3zNjQX9z5+kdlUAEjJvOG1Qa2b5bF36vqf5j6lfNKK491yn74Zs6H/H+l6NF5qOHML
        qEra75XNVXce9CS5eaKWC/uHLykzAOHmtvxnU+7EMCPrV+/DyD9PEo3q/opEoMDeCN/PCo03cT9jkcGeMrm+eyJgQaabf6RVWh+4
        kvC/JmnKMXmK3rCKYSAqpCcvx/o6wr9/EeXas5A+UZd78YOSZKdCoW1JYnHgkYTh9bF6m1R+lnQPqj7vf6iD5GRHa46Qtplanqpw
        owJSng8zoWamoiYEh+9XhogAo23qPXE+CjkMnjIFPDpJJRr4eTJsodZ45huHfbYmCR9bTkricPzYXUHCtULHRo/5JXSKu7fBngyl
        XzmXmG3mvR/e+NrnXSxN5FqGfGOSKW1gSGjAfJpfYXOjnGo+XDty9jnYhNU3R9Px9k1SF6WSrqsvjzSW8cp/AnAAt6isR+Re3CHB
        OPmdl/KtuNKfj4YlUQuIW4p7Gbmk8KuS0I8lRrMqdd+MN6hVwyNx4vGx2N3RhcrzKmFlCcQWtQUwM84nhLrYfr5MeK52gxhzvMK+
        d0tF9zQvEqsfXdqwI4ZOMZiAQCeSay1maQC9SGuWx+vdztYj58pOlCsEAxNHhmgdpsxbIuchZ8M0CCcnBrdrAlTyFuTTdefeNaGT
        pcxO7/5amecAS4Led7k5NImjkZ5yv67mHtagznzAmvQ6gY4P6GSGl0IS5CeNRBWJNP8n7rTy6Bjt6ODIaTHs3u0v7u5K78FDhc6+
        4N6rwlqKk8lCnDJ1f4AFWQoufoc1xDiUys/iiktFvdgJhX0Efv0oLF5hFDBZCTKeEAFLzIE3YismFbdXEEYoxe4deEJ14K7zOGIH
        evCp9bqrsFPnK2BUNRJrF6wsjef9D/UCGjtVdHSxltKvYWHE+P/yFJkR0ktSSGsHiKCCBoQwggNdMIICRaADAgECAgECMA0GCSqG
        SIb3DQEBCwUAMDExCzAJBgNVBAYTAlVTMRAwDgYDVQQKEwdUZXN0IENBMRAwDgYDVQQLEwdTQ0VQIENBMB4XDTI2MTEyMzAzMzc1
        NVoXDTI3MTEyMzAzMzc1NVowSjELMAkGA1UEBhMCVVMxFDASBgNVBAoTC3NjZXAtY2xpZW50MQwwCgYDVQQLEwNNRE0xFzAVBgNV
        BAMTDmZpeHR1cmUtY2xpZW50MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA7GwfOMURxUcD2NQjPxPgOO/FlQwQ160O
        lB6/PaGLOnf9y3r1M+GtefNw8KNJFxm4OFsE2Qsp8j5FNvEyM3vqlP6V4E9trQHxo93/NfdjXFj0jjCt4OshojHTbec+SzvOBHok
        fZp/1WsoydU4nzWBj+ezGQWhSmlVgz1CJvefyzLcOWvIpEx82CkzIKOSZLQq8gWGUrfJ5NsT8vp8xpdHz3WSNccdF9pr2K9y9p4n
        iMecyTsRWa0415ESpO/4WjDta647+CdSSo9AvQ8Vyhv6i4/NPSN2YAk3jH3215/QphQDZoO8d2I7hQwCO0flsibr2pRvWSpZT7sX
        fYLc6iu8hQIDAQABo2cwZTAOBgNVHQ8BAf8EBAMCB4AwEwYDVR0lBAwwCgYIKwYBBQUHAwIwHQYDVR0OBBYEFJ9Zvcu3VejqQCIm
        LCkFDy0YvafUMB8GA1UdIwQYMBaAFBz27YtvZzMOOgoP4KB6eBEuAu0LMA0GCSqGSIb3DQEBCwUAA4IBAQCUuICuxsgfkR0YJM7b
        cnVzM2FSzo8mvDdo3+w6SaQyajBcBIsC/o0nh6IhIbnyQZuPi41jvzOOrAvJdRBjmtMrHr0rXCVyFJNKZ3UoNnNjJESR6nQQLtcd
        swxdigAI9Tkj0OLDi9ZYoZFXZdS4xulC2yR3sGBVLjDCGm6Rsx12sWcHheacewT6TB46kq0UyUPFFHlXLQkA8njwfYwII6mFMIQA
        B0HIRkjusbZJQRbzREY7Sn4t9J9MqoprkrFP4UQ3knDRyIcGs17wWeY873a01PsEtzx9ZjctHYv03nRgdYgahEtTHsBR97pDuPp8
        WLxZXv7qZFo2xiJFS3LQGieLMIIDHzCCAgegAwIBAgIBATANBgkqhkiG9w0BAQsFADAxMQswCQYDVQQGEwJVUzEQMA4GA1UEChMH
        VGVzdCBDQTEQMA4GA1UECxMHU0NFUCBDQTAeFw0yNjExMjMwMzM3NTNaFw0yNzExMjMwMzM3NTNaMDExCzAJBgNVBAYTAlVTMRAw
        DgYDVQQKEwdUZXN0IENBMRAwDgYDVQQLEwdTQ0VQIENBMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAtZXqpKWwNfS8
        H4NHTJINOS5LQdbOYqiVF7YuwSBo1maW/BoOCZtjdyy0kZA8Sfg8Y1xxk9GdS3Eww0IAVdap3QxwZAtkuSLlpQmoYKUwRDD5GRXN
        N/kn7l1KAU9Zv74MF7IzcJM46BMYgC+V4B2/vQq9b1HCYRHLuWACOhtrmec+5Vyh/acccVrQBMviZGbG0ho/Xbhp9l+XraPB+0RC
        CUdd/e1ne2ZvnAcf7EZzVyqc4ZiOFMhwXIsiPIhoPxUEoBQXtAzdvpJFzpjf9cTQBNHVrVbfBbR+s+RfIKWxuf3ACLUC2z3q9UAH
        jADHmcPdZu5SZ7EdA4+4xSlXeNaUZwIDAQABo0IwQDAOBgNVHQ8BAf8EBAMCAQYwDwYDVR0TAQH/BAUwAwEB/zAdBgNVHQ4EFgQU
        HPbti29nMw46Cg/goHp4ES4C7QswDQYJKoZIhvcNAQELBQADggEBAHXTNWMUYi+ZHu7XutKqT0EYHFNhbFx8Xi3301yjET2hJUSE
        Q1s7R70+Cq3ySrbneBLt1OQ+uGPv2htw8/FcL2h2SSZ9bJvGU8yKnvClwebrKNIHHTr5hwEKCUJhYPPKF32pv1OO2pz0VqItmcoY
        x3kq6ZBXCKHwfVbI7F+FAKkUPeN5dnTCY3u4GKWENyrZIivyVlSKGZ8kGQ1vNeRI/qMjb9ErJGbQKLqyhV9tw34nZv/cIGTNflQC
        SWHiRjU4eopGMsbJ28D3QFH5P2nFGptvMJTrAfN/oAHiCjRvVEIirXgCDjjqJMgQ7TWjj84takPwyE8X9XeRxg1ATkKeNpAxggJR
        MIICTQIBATA2MDExCzAJBgNVBAYTAlVTMRAwDgYDVQQKEwdUZXN0IENBMRAwDgYDVQQLEwdTQ0VQIENBAgEBMAcGBSsOAwIaoIH1
        MBEGCmCGSAGG+EUBCQIxAxMBMzARBgpghkgBhvhFAQkDMQMTATAwGAYJKoZIhvcNAQkDMQsGCSqGSIb3DQEHATAcBgkqhkiG9w0B
        CQUxDxcNMjYxMTIzMDMzNzU1WjAgBgpghkgBhvhFAQkFMRIEEGL6J1BiL4ji3qYcYPnjx4swIAYKYIZIAYb4RQEJBjESBBBi+idQ
        Yi+I4t6mHGD548eLMCMGCSqGSIb3DQEJBDEWBBT8xjIshkeBkg9CBaB8sg5bfrXCZTAsBgpghkgBhvhFAQkHMR4THG4xbTl5N2RW
        Nk9wQUlpWXNLUVVQTFJpOXA5UT0wCwYJKoZIhvcNAQEFBIIBAHQzcrVtnbhl5rn0YmnRqFWDkj19Ntqa8TbsR/mdcmDhFT6I/k2+
        6FZFYvGoTjTox2Rm2PNUlmQyjlkcOwxFtv677m+bwhL3x/rEr/6tXdMNoBtIa8Byg1dAThNd2URjHTWIVWxsLrtVlVxf5TZs0tYL
        YZ1PFWr8OKQUdFsDZgzIyJX35XNfto07Mv7FRL5fNCEz8twtLz9h2AS2GkQTK3khGAJlInBYRny1fzRQ8ezzDpKZcDOs0rkMhKiM
        Vfm45P1FDP4XnpyIWvV+eKY8vtN1SWVHY8v9MkTI1rRENb57Hm+6frE3/8YCsuHmbAr8SQg+7O3XeLSL4uEni62ynxM=
        """)
    /// scepclient's throwaway RSA-2048 key (PKCS#1), generated for this capture only: opens `certRep`'s envelope.
    static let clientKeyPEM = """
        -----BEGIN RSA PRIVATE KEY-----
        MIIEpAIBAAKCAQEA7GwfOMURxUcD2NQjPxPgOO/FlQwQ160OlB6/PaGLOnf9y3r1
        M+GtefNw8KNJFxm4OFsE2Qsp8j5FNvEyM3vqlP6V4E9trQHxo93/NfdjXFj0jjCt
        4OshojHTbec+SzvOBHokfZp/1WsoydU4nzWBj+ezGQWhSmlVgz1CJvefyzLcOWvI
        pEx82CkzIKOSZLQq8gWGUrfJ5NsT8vp8xpdHz3WSNccdF9pr2K9y9p4niMecyTsR
        Wa0415ESpO/4WjDta647+CdSSo9AvQ8Vyhv6i4/NPSN2YAk3jH3215/QphQDZoO8
        d2I7hQwCO0flsibr2pRvWSpZT7sXfYLc6iu8hQIDAQABAoIBAQDA64GWq4jSuB41
        gvW39RoUm+NYul3MAJVS3LwlKHsaHOvmbNFForQSPUo9sqBjz0L6CZutGGUEHTgR
        m0Phqw5CwnO+dFIEyP9LPk2Q1ewoYRY+KQ7Z6ESru4jRt86nSYfVM24vaDFED4tb
        Fzh7AghVSzZkBqoUtFtpGkWu0oV8ItT8lmTm1PvDilharkeldw++NRinbeVK1wul
        JdpD6prLbmObyVK08veQDhsXKW18mUwqJ8CtNrAE83Nru9fHgw18BWEvCGaicZXW
        QEksAampW5dxHUWOYH75RLyP0WyhAzoJ2GSx+57uh81AKzvQ2h1pNVNNDapqaxCo
        PoEfnMABAoGBAPWThbA8MD8mevagwIoDhwF5tBougcSWJDdkLRO5GmsiNR5OPIN3
        swJa3dlBZsTWGdNUplYIwgxK15+yS522E03QWzuMjA6OA60i+2WL+Mf9t8VVlHTa
        kOAU4EhQCus8cIzLjOcyGiSshAoKDDbObD1TSpKut1tNmaFRSCyLkmgBAoGBAPZ1
        IbSol4rFpsnJxrOcwwS86XamtkVflQZMtxsN3dV+/nQ4NS2hFY3W1IFksj73sbzD
        ShuUDgb0R5fGAHfYTzFqARcNJq7nduyOEgti1x+yq06HXWs4aJEYLvMHdka4k7za
        vBgE2z9OEWffny0zCAAXxrla3/J9iGpj9EF9+7SFAoGBAPFm5ekbEXZSdleQKBTD
        aOgbYd7GzsuXp9xHfkRAFmcwBjVXRQcbGH39Is2ZC9P8fwCN2sEB9Paub43Nb6WF
        wS4h3j0IaPk5wwVkOOpWkOTPVOIHwVqpK/cKrnqHLGSXUjAlO8pdJvPcHiPcQqtx
        eVdDVDAizZ1UB+xbAW7AeNgBAoGASoQZv8ylnRCroCFA0beZA0q27+fx/kGrBi+V
        wTlNFCsEdlE0SuqEYNFOiRzQA9fSRndpZbM7FoEvUEVOiO2+6/rX/4c7ZfCX9Wfz
        LrwgvPXBc8nbxfpVK2F7eIGOEk3mZVhhPIXjYF2TR6vGLd1bEuQdcpd2VJP99eTo
        yhB0VR0CgYAQusyXJ8mbPkQFzjovqtIzS2YzKqeatko4ZvgSUxiiVk+d+4irysmc
        kCL2WU2U+7DSXgJA8gvt4+QW1Xu5xz/phLSM3OM9aQ9/2vHcsPdtLAy5JZ6rO4Xz
        aVZxAI+DAPFdBsyOGpe9FjdqcPZlREhHw0+NObYRF4ZFd/58KDGHbg==
        -----END RSA PRIVATE KEY-----
        """
}
